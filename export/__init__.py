"""Serving: input receivers, exporters and tools that use the exported SavedModel.

The SavedModels under model_dir/export/{best,final}/<version>/ load in TensorFlow
Serving as they are:

  docker run -p 8501:8501 -v $PWD/runs/x/export/best:/models/x -e MODEL_NAME=x \
      tensorflow/serving
"""
