"""What a run reports when it ends: the Result object and the closing summary.

  Done: step 2000 in 4m12s.
    best eval accuracy 0.9312 at step 1800: accuracy 0.9312  loss 0.2170 ...
    final eval at step 2000: accuracy 0.9290  loss 0.2233 ...
    export/best: runs/flowers/export/best/1732458123
    watch it: tensorboard --logdir runs/flowers
"""

import dataclasses
import os
import time
from typing import Dict, Optional, Tuple

from estimator_pipeline.config import controls
from estimator_pipeline.core import console
from estimator_pipeline.core import files
from estimator_pipeline.train import early_stopping
from estimator_pipeline.train import estimator as estimator_lib


@dataclasses.dataclass
class Result:
  model_dir: str
  global_step: int
  eval_metrics: Optional[dict]
  best_metrics: Optional[dict]
  exports: Dict[str, Optional[str]]
  seconds: float
  best_metric: str = 'loss'
  # The line saying why nothing was trained (model_dir was done), or None.
  finished: Optional[str] = None
  # The line saying why training stopped before --num_steps, or None.
  stopped_early: Optional[str] = None
  # With --skip_corrupt_records: training records dropped, of those read; the same for
  # the last evaluation; 'file record i: problem' where a file could not be read on.
  skipped_records: Optional[int] = None
  records_read: Optional[int] = None
  eval_skipped_records: Optional[int] = None
  eval_records_read: Optional[int] = None
  unreadable: Tuple[str, ...] = ()


def finish(cfg, start, global_step, eval_metrics=None, writes_exports=True,
           finished=None, stopped_early=None, skips=None):
  """The Result of a run, a single process or one task of a cluster, and its closing
  lines (none when the run found nothing to do: `finished` says why).

  start: the run's time.time() at its start. writes_exports: whether this process
  judged the best checkpoint and wrote exports (else neither is reported). skips: the
  run's skips.SkipCounters, with --skip_corrupt_records.
  """
  outcome = Result(
      model_dir=cfg.model_dir, global_step=global_step,
      eval_metrics=dict(eval_metrics) if eval_metrics else None,
      best_metrics=best_metrics(cfg) if writes_exports else None,
      exports=(estimator_lib.newest_exports(cfg.model_dir) if writes_exports
               else {'best': None, 'final': None}),
      seconds=time.time() - start, best_metric=cfg.early_stopping_metric,
      finished=finished, stopped_early=stopped_early,
      **(skips.result_fields() if skips else {}))
  if not finished:
    print_summary(outcome)
  return outcome


def best_metrics(cfg, model_dir=None):
  """The best evaluation in model_dir/eval by --early_stopping_metric, or None."""
  direction = controls.metric_direction(cfg.early_stopping_metric,
                                        cfg.early_stopping_mode)
  return early_stopping.summary_best(files.eval_history(model_dir or cfg.model_dir),
                                     cfg.early_stopping_metric, direction)


def print_summary(result):
  """The closing lines: wall time, best and final evaluation, exports, TensorBoard."""
  console.line('Done: step %d in %s.' % (result.global_step,
                                          console.duration(result.seconds)))
  if result.best_metrics:
    # export/best and model_dir/best are chosen by the same metric.
    console.line('  best eval %s %.4f at step %d: %s' % (
        result.best_metric, float(result.best_metrics[result.best_metric]),
        int(result.best_metrics['global_step']),
        console.metrics_text(result.best_metrics)))
  if result.eval_metrics:
    console.line('  final eval at step %d: %s' % (
        int(result.eval_metrics.get('global_step', result.global_step)),
        console.metrics_text(result.eval_metrics)))
  if result.stopped_early:
    console.line('  stopped early (see above); best checkpoint in %s'
                 % os.path.join(result.model_dir, early_stopping.BEST_DIR))
  for name, path in sorted(result.exports.items()):
    if path:
      console.line('  export/%s: %s' % (name, path))
  if result.skipped_records is not None:
    console.line('  --skip_corrupt_records: skipped %d of %d training records read in '
                 'this run (records that fail to parse or decode, labels out of range, '
                 'bad CRCs, broken framing)' % (result.skipped_records,
                                                result.records_read))
  if result.eval_skipped_records is not None:
    console.line('  --skip_corrupt_records: skipped %d of %d evaluation records in the '
                 'last evaluation' % (result.eval_skipped_records,
                                      result.eval_records_read))
  for where in result.unreadable:
    console.line('  --skip_corrupt_records: could not read past %s (counted as one '
                 'skipped record; `records inspect` tells more)' % where)
  console.line('  watch it: tensorboard --logdir %s' % result.model_dir)
