"""Flags that choose and shape the model, and how it starts (warm start, frozen scopes)."""

from flags.common import define


def define_model_flags():
  define('model_name', 'Registered model to train, e.g. resnet_v1_50, inception_v3, '
         'vgg_16 or cifarnet; an unknown name lists the known ones.')
  define('num_classes', 'Number of classes; 0 takes the count from labels.txt (for '
         'sequence models, from the records: their number of targets).')
  define('params_file', "basenji's JSON params file (model and train sections) for "
         '--model_name=seqnn; flags given on the command line override its train '
         'section.')
  define('head', "Which head of --params_file to build when it has several (e.g. "
         'head_human); empty takes basenji\'s: the first head* key in natural order. A '
         'name that is not a head lists the heads.')
  define('gelu', "How sequence models compute gelu: tanh, the approximation of basenji "
         '0.6 and later and of baskerville, or sigmoid (x * sigmoid(1.702 x)), basenji '
         '0.5.1 and earlier, e.g. the 2020 Basenji2 models.')
  define('image_size', "Network input height and width in pixels; 0 uses the network's "
         'default (224 for resnet_v1_50, 299 for inception_v3, 32 for cifarnet).')
  define('random_flip', 'Randomly flip training images left-right (turn off for data '
         'where orientation matters, such as digits or text).')
  define('label_smoothing', 'Label smoothing for the cross-entropy loss, 0 for none.')
  define('weight_decay', "L2 weight decay of the net's arg scope; a negative value "
         "keeps the net's own default. With --optimizer=adamw it is AdamW's decoupled "
         'decay rate instead (negative: 0.01) and the net has no L2 term.')
  define('dropout_keep_prob', "Dropout keep probability for nets that have dropout; a "
         "negative value keeps the net's own default.")
  define('checkpoint_path', 'Checkpoint (file or directory) to warm-start from, e.g. '
         "slim's resnet_v1_50.ckpt, or for sequence models the .h5 basenji's or "
         "baskerville's SeqNN.save wrote (model_best.h5); used only when --model_dir "
         'holds no checkpoint yet.')
  define('checkpoint_exclude_scopes', 'Comma-separated variable scopes not restored '
         'from --checkpoint_path, e.g. resnet_v1_50/logits for a new head.')
  define('ignore_missing_vars', 'Skip (and list) variables missing from '
         '--checkpoint_path or of another shape, instead of stopping.')
  define('trainable_scopes', 'Comma-separated scopes to train (as in slim); empty trains '
         'every variable.')
  define('scopes_to_freeze', 'Comma-separated scopes whose variables, batch-norm '
         'statistics included, stay exactly as initialized (their batch norm still '
         'normalizes with batch statistics while training, as slim does).')
