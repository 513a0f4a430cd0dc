"""What the layers around a model need to know about it, without building a graph.

  python -c "import estimator_pipeline; from estimator_pipeline import models; \
print(models.get('resnet_v1_50'))"
"""

import dataclasses
from typing import Callable, Optional, Tuple


@dataclasses.dataclass(frozen=True)
class ModelSpec:
  name: str
  build: Callable  # (is_training, num_classes, **params) -> Model
  layout: str  # the record layout it reads: 'image' or 'sequence' (records/format.py)
  preprocessing: Optional[str] = None  # image family, see data/image_ops.py FAMILIES
  default_image_size: int = 0
  # Scopes a fine-tuning user usually excludes from warm start (the classifier head).
  head_scopes: Tuple[str, ...] = ()
  # (spec, *, params_file, head, gelu, seq_length, num_classes, image_size) ->
  # (title line, overview.Overview): what `python -m estimator_pipeline.models` shows.
  # Each family reads its own options and refuses the others' when they are set.
  describe: Optional[Callable] = None
