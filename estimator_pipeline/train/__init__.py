"""Training: run(config) -> checkpoints, events and exports (driver.py).

The plan (plan.py: every check before anything is written), one task per record
layout (tasks/), the Estimator with its specs and exporters (estimator.py), the local
run (local.py) and cluster roles (cluster.py, strategies.py, launcher.py), and what
keeps a run whole: hooks, safety (signals, NaN guard), early stopping, the model_dir
lock.
"""

from estimator_pipeline.train.driver import run  # noqa: F401  (the one entry point)
