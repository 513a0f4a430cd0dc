"""The programs on top: what a user runs on a trained model.

The SavedModels under model_dir/export/{best,final}/<version>/ load in TensorFlow
Serving as they are (REST on 8501, gRPC on 8500):

  docker run -p 8500:8500 -p 8501:8501 -v $PWD/runs/x/export/best:/models/x \
      -e MODEL_NAME=x tensorflow/serving

  __main__.py     export a checkpoint without training (`python -m export`)
  predict.py      batch inference: images to .csv/.jsonl, genome regions to .h5
                  (`python -m export.predict`)
  variants.py     variant effects of a VCF, basenji_sad.py (`python -m export.variants`)
  mutagenesis.py  saturation mutagenesis, basenji_sat_bed.py
                  (`python -m export.mutagenesis`)
  saliency.py     per-base contribution scores (`python -m export.saliency`)
  evaluate.py     the test-set report (`python -m export.evaluate`)
  client.py       TF Serving REST client (`python -m export.client`)

Each program defines its flags, makes one call into the library and turns bad input
into one line and exit status 2: the library is estimator_pipeline/train/exporting.py
(export) and estimator_pipeline/analysis/ (everything after training).
"""
