r"""Converters that write TFRecords the pipeline reads, and their command line.

  python -m estimator_pipeline.records images --image_dir=photos/ --output_dir=data/ \
      --validation_fraction=0.1 --num_shards=4

images.py: a folder of images, one sub-folder per class -> slim image records
(train-00000-of-00004.tfrecord ..., validation-..., labels.txt). Each converter is a
library function that tests and the demo call directly; __main__.py only maps flags
onto it.
"""
