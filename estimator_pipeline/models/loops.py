r"""Several training steps per session call: an in-graph loop around the model_fn.

A small net on a CPU spends more time in the per-step machinery (a session.run, every
hook, the feed of one batch) than in its own arithmetic. `--steps_per_loop=N` runs N
training steps inside the graph, as TPUEstimator's iterations_per_loop does: the input
function yields N batches stacked into one element, and the model_fn runs a
tf.compat.v1.while_loop whose body is the ordinary single-step model_fn, so the global
step advances by N per session call. data/speed.py stacks the batches; the thread
flags (--inter_op_threads, --intra_op_threads, --data_threads) are set up by
train/estimator.py and data/speed.py.

  python train.py --model_name=cifarnet --steps_per_loop=20 --inter_op_threads=2 \
      --intra_op_threads=2 --data_threads=2 ...

What stays as it is with N > 1:

- the global step, learning-rate schedule and checkpoints: a loop never runs past a
  checkpoint step or --num_steps (it runs fewer steps instead and drops the rest of
  its stacked batches), so checkpoints and evaluations happen at the same steps as with
  N = 1, and a run ends exactly at --num_steps;
- summaries, the console line and the Estimator's hooks: the body's scalar and
  histogram summaries are re-created outside the loop over the values of the loop's
  last step, and the Estimator's cached global-step read (which every hook fetches) is
  replaced by one taken after the loop, so hooks see the step the call ended at;
- variable names and checkpoints: the body creates the same variables, so a run can
  resume with another --steps_per_loop.

What differs: the console line, the summaries and the loss the Estimator reports are
those of the last step of each loop (a mean over the loop would hide a NaN; slim's
train op still checks every step's loss and stops the run at the first NaN), and
summaries come every --log_every_steps rounded up to whole loops.
"""

import tensorflow as tf
from tensorflow.python.training import training_util  # pylint: disable=g-direct-tensorflow-import

from estimator_pipeline.models import model_fn as model_fn_lib

TRAIN = tf.estimator.ModeKeys.TRAIN
# The global step after a session call's last step; hooks.ProgressHook prefers it.
GLOBAL_STEP_AFTER_RUN_NAME = 'pipeline/global_step_after_run'
_LOOP_SCOPE = 'train_loop'
# Tensors that hooks fetch by name, re-created outside the loop from its last step.
_CARRIED_NAMES = (model_fn_lib.TOTAL_LOSS_NAME, model_fn_lib.LEARNING_RATE_NAME)
_SUMMARY_TYPES = {'ScalarSummary': tf.compat.v1.summary.scalar,
                  'HistogramSummary': tf.compat.v1.summary.histogram}


def _loop_count(global_step, steps_per_loop, max_steps, every_steps):
  """Steps this call runs: N, but never past max_steps or the next multiple of every."""
  count = tf.constant(steps_per_loop, tf.int64)
  if max_steps:
    count = tf.minimum(count, max_steps - global_step)
  if every_steps:
    count = tf.minimum(count, every_steps - global_step % every_steps)
  return tf.maximum(count, 0)


def _holder(value, name):
  """A local variable that keeps a loop-body tensor's last value for after the loop."""
  with tf.init_scope():
    return tf.compat.v1.get_variable(
        name, shape=value.shape, dtype=value.dtype.base_dtype,
        initializer=tf.compat.v1.zeros_initializer(), trainable=False,
        collections=[tf.compat.v1.GraphKeys.LOCAL_VARIABLES], use_resource=True)


def _carried(body_graph, scope, summaries):
  """{outer name: (kind, ..., tensor in the loop body)} of what hooks and summaries
  read: the named loss and learning rate, and every scalar or histogram summary."""
  carried = {}
  for name in _CARRIED_NAMES:
    try:
      carried[name] = ('tensor', body_graph.get_tensor_by_name(
          '%s/%s:0' % (scope, name) if scope else name + ':0'))
    except KeyError:
      pass
  for summary in summaries:
    if summary.op.type not in _SUMMARY_TYPES:
      # Image and text summaries (the input images) are not carried out of the
      # loop: BUILD.md says --steps_per_loop > 1 shows no input images.
      continue
    tag = tf.get_static_value(summary.op.inputs[0])
    tag = getattr(tag, 'item', lambda: tag)()  # A 0-d array holds the bytes.
    tag = tag.decode() if isinstance(tag, bytes) else str(tag)
    if scope and tag.startswith(scope + '/'):
      tag = tag[len(scope) + 1:]
    carried['summary/%d' % len(carried)] = (summary.op.type, tag,
                                             summary.op.inputs[1])
  return carried


def make_looped_model_fn(model_fn, steps_per_loop, *, max_steps=0, every_steps=0):
  """Wraps a model_fn so that training runs `steps_per_loop` steps per session call.

  Evaluation and prediction are passed through unchanged; training expects the
  features and labels of `stack_batches`.

  Args:
    model_fn: an Estimator model_fn whose TRAIN spec has loss and train_op, and which
      increments the global step once per train_op run.
    steps_per_loop: training steps per session call (1 returns model_fn itself).
    max_steps: the run's last step (--num_steps); a loop stops there. 0: no limit.
    every_steps: checkpoint cadence; a loop stops at each multiple. 0: no limit.

  Returns:
    model_fn(features, labels, mode, params, config) -> EstimatorSpec.
  """
  if steps_per_loop <= 1:
    return model_fn

  def looped_model_fn(features, labels, mode, params=None, config=None):
    if mode != TRAIN:
      return model_fn(features, labels, mode, params, config)
    return _looped_train_spec(model_fn, features, labels, params, config,
                              steps_per_loop, max_steps, every_steps)

  return looped_model_fn


def _looped_train_spec(model_fn, features, labels, params, config, steps_per_loop,
                       max_steps, every_steps):
  graph = tf.compat.v1.get_default_graph()
  global_step = tf.compat.v1.train.get_or_create_global_step()
  # The read every Estimator hook fetches as "the step before this call". The loop
  # waits for it, so it is always that, whatever order the session runs ops in.
  start = tf.cast(training_util._get_or_create_global_step_read(), tf.int64)  # pylint: disable=protected-access
  count = _loop_count(start, steps_per_loop, max_steps, every_steps)
  summary_key = tf.compat.v1.GraphKeys.SUMMARIES
  body_state = {}

  def step_slice(tensor, i):
    return tf.gather(tensor, i) if tensor is not None else None

  def body(i):
    # TF2 builds the body as a function graph of its own.
    body_graph = tf.compat.v1.get_default_graph()
    scope = body_graph.get_name_scope()
    before = {s.ref() for s in body_graph.get_collection(summary_key)}
    spec = model_fn(tf.nest.map_structure(lambda t: step_slice(t, i), features),
                    tf.nest.map_structure(lambda t: step_slice(t, i), labels),
                    TRAIN, params, config)
    # Hooks run around the whole loop; the pipeline's own (early stopping) fetch no
    # tensor, which could not be fetched from inside the loop's body.
    body_state.update(training_hooks=list(spec.training_hooks),
                      training_chief_hooks=list(spec.training_chief_hooks))
    summaries = [s for s in body_graph.get_collection(summary_key)
                 if s.ref() not in before]
    carried = _carried(body_graph, scope, summaries)
    loss = spec.loss
    holders = {}
    assigns = []
    with tf.control_dependencies([spec.train_op]):
      holders['loss'] = _holder(loss, 'steps_per_loop/loss')
      assigns.append(holders['loss'].assign(loss))
      for index, (key, value) in enumerate(sorted(carried.items())):
        holders[key] = _holder(value[-1], 'steps_per_loop/value_%d' % index)
        assigns.append(holders[key].assign(value[-1]))
    body_state.update(holders=holders, carried=carried, summaries=summaries)
    with tf.control_dependencies([spec.train_op] + assigns):
      return (i + 1,)

  # A body's reads of the variables must follow the previous body's updates: the next
  # iteration starts only when the loop counter, which waits for the train op, is
  # ready, and parallel_iterations=1 keeps it that way.
  with tf.control_dependencies([start]):
    (done,) = tf.compat.v1.while_loop(
        lambda i: i < count, body, (tf.constant(0, tf.int64),),
        parallel_iterations=1, back_prop=False, return_same_structure=True,
        name=_LOOP_SCOPE)

  # The body's summaries would fetch tensors from inside the loop; they are replaced by
  # the same summaries over the last step's values.
  kept = [s for s in graph.get_collection(summary_key) if s.graph is graph]
  graph.clear_collection(summary_key)
  for s in kept:
    graph.add_to_collection(summary_key, s)

  holders = body_state['holders']
  with tf.control_dependencies([done]):
    loss = tf.identity(holders['loss'].read_value())
    for key, value in sorted(body_state['carried'].items()):
      last = holders[key].read_value()
      if value[0] == 'tensor':
        tf.identity(last, name=key)
      else:
        _SUMMARY_TYPES[value[0]](value[1], last)
    tf.identity(global_step.read_value(), name=GLOBAL_STEP_AFTER_RUN_NAME)
    train_op = tf.group(done, name='train_loop_op')
  # The Estimator's checkpoint saver re-reads the global step after every call, so
  # it saves at the multiples of every_steps the loop stops at; its steps/sec counter
  # and summary saver count global-step differences, which stay right as well.
  return tf.estimator.EstimatorSpec(
      TRAIN, loss=loss, train_op=train_op,
      training_hooks=body_state.get('training_hooks', ()),
      training_chief_hooks=body_state.get('training_chief_hooks', ()))
