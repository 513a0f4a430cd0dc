"""What users do with a trained model, above training: the library of the export/
programs.

  python -m export.variants --saved_model=runs/cage/export/best --fasta=genome.fa \
      --vcf=variants.vcf --output_dir=out/

  model_source.py        the one loader: check_source, load_export (any SavedModel),
                         load (a sequence model from an export or a params file)
  sequence_model.py      a loaded sequence model: predictions, ensemble, saliency
  windows.py             the one reader of BED regions as model windows
  variants.py, variant_stats.py, variant_output.py   variant effects (basenji_sad.py)
  mutagenesis.py, mutagenesis_output.py, plots.py    saturation mutagenesis
  regions.py             predictions over BED regions (basenji_predict_bed.py)
  saliency.py            input x gradient per base
  image_predictions.py   an image classifier's export over images or records
  rest_client.py         TF Serving REST requests and answers
  evaluation.py, reports.py   the test-set report
"""
