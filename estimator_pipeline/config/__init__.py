"""A run's configuration: the frozen Config, every flag check, flags.txt, basenji's
params file, and the cluster this process is part of.

  python -c "from estimator_pipeline.config import Config; print(Config().to_json())"
"""

from estimator_pipeline.config.config import CONFIG_FILE  # noqa: F401
from estimator_pipeline.config.config import Config  # noqa: F401
from estimator_pipeline.config.config import load  # noqa: F401
