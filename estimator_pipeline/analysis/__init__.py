"""What users do with a trained model, above training: the library of the export/
programs.

  python -m export.variants --saved_model=runs/cage/export/best --fasta=genome.fa \
      --vcf=variants.vcf --output_dir=out/

  exports.py             the one loader of SavedModels (load_export), any model
  model_source.py        how a command is given its model (check_source), and a
                         sequence model from an export or a params file (load)
  sequence_model.py      a loaded sequence model: predictions, ensemble, saliency
  windows.py             the one reader of BED regions as model windows
  variants.py, variant_stats.py, variant_output.py   variant effects (basenji_sad.py)
  mutagenesis.py, mutagenesis_output.py, plots.py    saturation mutagenesis
  regions.py             predictions over BED regions (basenji_predict_bed.py)
  saliency.py            input x gradient per base
  attribution*.py, readout.py, gtf.py   attributions (saliency, ig, deepshap, ism)
                         of a readout, TF-MoDISco's arrays (export.attribution)
  motifs.py, motifs_report.py           TF-MoDISco, Tomtom, the report (export.motifs)
  image_predictions.py   an image classifier's export over images or records
  rest_client.py         TF Serving REST requests and answers
  evaluation.py          the test-set report of a model_dir (the task of its layout
                         hands out the report: models/image/report.py,
                         models/seqnn/report.py)
  sequence_evaluation.py the test-set report of a sequence model without its model_dir
"""
