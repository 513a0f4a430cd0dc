"""What every layer may use: one-line errors, the console, the TF 2.15 fixes, files, and
the registry mechanism. Nothing here knows about records, models or training."""
