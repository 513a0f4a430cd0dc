"""Serving: input receivers, outputs, exporters and the tools that use the export.

The SavedModels under model_dir/export/{best,final}/<version>/ load in TensorFlow
Serving as they are (REST on 8501, gRPC on 8500):

  docker run -p 8500:8500 -p 8501:8501 -v $PWD/runs/x/export/best:/models/x \
      -e MODEL_NAME=x tensorflow/serving

  serving.py      --serving_input receivers, registered per record layout
  outputs.py      classes, probabilities, top-k, class names (assets), classify
  warmup.py       assets.extra/tf_serving_warmup_requests
  exporters.py    best/final exporters of a training run
  export_lib.py   export a checkpoint without training (`python -m export`)
  predict.py      batch inference to .csv/.jsonl (`python -m export.predict`)
  client.py       TF Serving REST client (`python -m export.client`)
"""
