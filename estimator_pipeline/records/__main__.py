r"""The converters' command line: `python -m estimator_pipeline.records <subcommand>`.

  python -m estimator_pipeline.records images --image_dir=photos/ --output_dir=data/ \
      --validation_fraction=0.1 --num_shards=4 --seed=0
  python -m estimator_pipeline.records images --help
  python -m estimator_pipeline.records sequences --fasta=hg38.fa \
      --targets_file=targets.txt --crop_bp=8192 --output_dir=data/
  python -m estimator_pipeline.records inspect 'data/train-*.tfrecord'

The first argument picks a subcommand from _SUBCOMMANDS; the rest are its absl flags.
Bad input is one `error: ...` line and exit status 2.
"""

import functools
import sys

import estimator_pipeline  # First: applies the TF 2.15 compatibility fixes.
from estimator_pipeline.core import console

console.quiet_imports()

# pylint: disable=g-import-not-at-top,wrong-import-position
from absl import app
from absl import flags as absl_flags

import flags
from estimator_pipeline.core import errors
from estimator_pipeline.core import files as files_lib
from estimator_pipeline.records import images
from estimator_pipeline.records import inspect as inspect_lib
from estimator_pipeline.records import sequences
from flags import records as records_flags

FLAGS = absl_flags.FLAGS
_PROG = 'python -m estimator_pipeline.records'


def _reject_positional(argv, example_flag='image_dir'):
  # absl hands over what is not a flag; `images photos/` is a forgotten --image_dir=.
  if len(argv) > 1:
    raise errors.UserError('unexpected argument %r: every input is a flag, e.g. '
                           '--%s=%s' % (argv[1], example_flag, argv[1]))


# The flags each converter takes, named as the library function's arguments.
_IMAGES_ARGS = ('image_dir', 'output_dir', 'validation_fraction', 'num_shards', 'seed',
                'num_workers', 'overwrite')
_SEQUENCES_ARGS = ('fasta', 'bed', 'coverage', 'output_dir', 'targets_file',
                   'seq_length', 'pool_width', 'crop_bp', 'sum_stat', 'clip',
                   'clip_soft', 'scale', 'identifiers', 'valid_chroms', 'test_chroms',
                   'valid_fraction', 'test_fraction', 'stride', 'stride_test',
                   'gap_min', 'seed', 'blacklist', 'umap', 'umap_t', 'umap_clip',
                   'ignore_track_chroms', 'processes', 'seqs_per_tfr', 'overwrite')


def _flag_values(names):
  return {name: FLAGS[name].value for name in names}


def _images_main(argv):
  _reject_positional(argv)
  console.quiet()
  print(images.convert_image_folder(**_flag_values(_IMAGES_ARGS)).summary())


def _sequences_main(argv):
  _reject_positional(argv, 'fasta')
  console.quiet()
  args = _flag_values(_SEQUENCES_ARGS)
  for name in ('bed', 'targets_file', 'clip', 'clip_soft', 'scale', 'blacklist',
               'umap'):
    args[name] = args[name] or None  # An empty flag: none of it.
  print(sequences.convert_sequences(**args).summary())


def _inspect_main(argv):
  console.quiet()
  patterns = [p for p in [FLAGS.record_path] + list(argv[1:]) if p]
  if not patterns:
    raise errors.UserError("no records to inspect: pass a glob, e.g. %s inspect "
                           "'data/*.tfrecord'" % _PROG)
  files = sorted({f for pattern in patterns
                  for f in files_lib.list_files(pattern, 'record glob')})
  if FLAGS.compression != 'auto':
    for path in files:
      inspect_lib.check_readable(path, FLAGS.compression,
                                 'pass --compression=auto or the right one')
  layout = FLAGS.layout or inspect_lib.detect_layout(files)
  context = {'num_classes': FLAGS.num_classes} if FLAGS.num_classes else {}
  report = inspect_lib.inspect_files(files, layout, FLAGS.compression, **context)
  print('\n'.join(report.lines()))
  sys.stdout.flush()
  error = report.error('re-create them, leave their files out, or train with '
                       '--skip_corrupt_records')
  if error:
    raise error


def _runner(define_flags, main):
  """The runner of a subcommand: defines its flags, parses them, runs main."""

  def run(argv):
    define_flags()
    # So that --help lists them; flags defined in other modules only show in
    # --helpfull.
    absl_flags.adopt_module_key_flags(records_flags)
    app.run(functools.partial(errors.run_main, main), argv=argv,
            flags_parser=flags.parse_or_exit)

  return run


# name -> (what it converts, runner given [program name] + the subcommand's arguments).
# A new converter is one entry here and one define_*_flags() in flags/records.py.
_SUBCOMMANDS = {
    'images': ('a folder of images, one sub-folder per class -> image TFRecords',
               _runner(records_flags.define_images_flags, _images_main)),
    'sequences': ('a genome FASTA and bigWig/bedGraph coverage tracks (tiled, or a BED '
                  'of regions) -> basenji TFRecords',
                  _runner(records_flags.define_sequences_flags, _sequences_main)),
    'inspect': ('reads every record of GLOB (image or basenji records); reports '
                'counts, labels, sizes or lengths, and every bad record by file and '
                'index', _runner(records_flags.define_inspect_flags, _inspect_main)),
}


def _usage():
  lines = ['usage: %s <subcommand> [--flags]   (<subcommand> --help for its flags)'
           % _PROG]
  lines.extend('  %-10s %s' % (name, about) for name, (about, _) in _SUBCOMMANDS.items())
  return '\n'.join(lines)


def main(argv):
  if len(argv) > 1 and argv[1] in ('-h', '--help', '--helpfull', 'help'):
    print(_usage())
    return
  if len(argv) < 2 or argv[1] not in _SUBCOMMANDS:
    if len(argv) < 2:
      problem = 'missing subcommand'
    elif argv[1].startswith('-'):
      problem = 'missing subcommand before %s' % argv[1]
    else:
      problem = 'unknown subcommand %r' % argv[1]
    sys.stderr.write('error: %s; known: %s (e.g. %s images --help)\n' % (
        problem, ', '.join(sorted(_SUBCOMMANDS)), _PROG))
    sys.exit(errors.EXIT_USAGE)
  _, runner = _SUBCOMMANDS[argv[1]]
  runner(['%s %s' % (_PROG, argv[1])] + argv[2:])


if __name__ == '__main__':
  main(sys.argv)
