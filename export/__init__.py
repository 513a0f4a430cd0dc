"""The programs on top: what a user runs on a trained model.

The SavedModels under model_dir/export/{best,final}/<version>/ load in TensorFlow
Serving as they are (REST on 8501, gRPC on 8500):

  docker run -p 8500:8500 -p 8501:8501 -v $PWD/runs/x/export/best:/models/x \
      -e MODEL_NAME=x tensorflow/serving

  __main__.py     export a checkpoint without training (`python -m export`)
  predict.py      batch inference to .csv/.jsonl (`python -m export.predict`)
  saliency.py     per-base contribution scores (`python -m export.saliency`)
  client.py       TF Serving REST client (`python -m export.client`)

Each program maps its flags onto the library: estimator_pipeline/train/exporting.py,
serving/ (receivers, warm-up, exporters) and the record format modules in records/.
"""
