r"""The converters' command line: `python -m estimator_pipeline.records <subcommand>`.

  python -m estimator_pipeline.records images --image_dir=photos/ --output_dir=data/ \
      --validation_fraction=0.1 --num_shards=4 --seed=0
  python -m estimator_pipeline.records images --help
  python -m estimator_pipeline.records sequences --fasta=genome.fa --bed=regions.bed \
      --coverage=track1.bedGraph,track2.bedGraph --seq_length=1024 --pool_width=32 \
      --output_dir=data/
  python -m estimator_pipeline.records inspect 'data/train-*.tfrecord'

The first argument picks a subcommand from _SUBCOMMANDS; the rest are its absl flags.
Bad input is one `error: ...` line and exit status 2.
"""

import functools
import os
import sys

import estimator_pipeline  # First: applies the TF 2.15 compatibility fixes.
from estimator_pipeline import console

console.quiet_imports()

# pylint: disable=g-import-not-at-top,wrong-import-position
from absl import app
from absl import flags as absl_flags

import flags
from estimator_pipeline import errors
from estimator_pipeline.records import images
from estimator_pipeline.records import sequences
from estimator_pipeline.records import inspect as inspect_lib
from flags import records as records_flags

FLAGS = absl_flags.FLAGS
_PROG = 'python -m estimator_pipeline.records'


def _reject_positional(argv, example_flag='image_dir'):
  # absl hands over what is not a flag; `images photos/` is a forgotten --image_dir=.
  if len(argv) > 1:
    raise errors.UserError('unexpected argument %r: every input is a flag, e.g. '
                           '--%s=%s' % (argv[1], example_flag, argv[1]))


def _images_main(argv):
  _reject_positional(argv)
  console.quiet()
  result = images.convert_image_folder(
      FLAGS.image_dir,
      FLAGS.output_dir,
      validation_fraction=FLAGS.validation_fraction,
      num_shards=FLAGS.num_shards,
      seed=FLAGS.seed,
      num_workers=FLAGS.num_workers,
      overwrite=FLAGS.overwrite)
  print(result.summary())


def _run_images(argv):
  records_flags.define_images_flags()
  # So that --help lists them; flags defined in other modules only show in --helpfull.
  absl_flags.adopt_module_key_flags(records_flags)
  app.run(functools.partial(errors.run_main, _images_main), argv=argv,
          flags_parser=flags.parse_or_exit)


def _sequences_main(argv):
  _reject_positional(argv, 'fasta')
  console.quiet()
  result = sequences.convert_sequences(
      FLAGS.fasta,
      FLAGS.bed,
      FLAGS.coverage,
      FLAGS.output_dir,
      seq_length=FLAGS.seq_length,
      pool_width=FLAGS.pool_width,
      crop_bp=FLAGS.crop_bp,
      sum_stat=FLAGS.sum_stat,
      clip=FLAGS.clip or None,
      identifiers=FLAGS.identifiers,
      valid_chroms=FLAGS.valid_chroms,
      test_chroms=FLAGS.test_chroms,
      seqs_per_tfr=FLAGS.seqs_per_tfr,
      overwrite=FLAGS.overwrite)
  print(result.summary())


def _run_sequences(argv):
  records_flags.define_sequences_flags()
  absl_flags.adopt_module_key_flags(records_flags)
  app.run(functools.partial(errors.run_main, _sequences_main), argv=argv,
          flags_parser=flags.parse_or_exit)


def _inspect_main(argv):
  console.quiet()
  patterns = [p for p in [FLAGS.record_path] + list(argv[1:]) if p]
  if not patterns:
    raise errors.UserError("no records to inspect: pass a glob, e.g. %s inspect "
                           "'data/*.tfrecord'" % _PROG)
  # Imported here: train_lib pulls in every model, which `images` does not need.
  from estimator_pipeline import input_fn  # pylint: disable=g-import-not-at-top
  from estimator_pipeline import train_lib  # pylint: disable=g-import-not-at-top
  files = []
  for pattern in patterns:
    files.extend(input_fn.list_files(pattern, 'record glob'))
  num_classes = FLAGS.num_classes or None
  labels = os.path.join(os.path.dirname(files[0]), train_lib.LABELS_FILE)
  if num_classes is None and os.path.exists(labels):
    num_classes = len(train_lib.read_labels(labels))
  if FLAGS.compression != 'auto':
    for path in files:
      inspect_lib.check_readable(path, FLAGS.compression,
                                 'pass --compression=auto or the right one')
  report = inspect_lib.inspect_files(sorted(set(files)), FLAGS.layout, num_classes,
                                     FLAGS.compression)
  print('\n'.join(report.lines()))
  sys.stdout.flush()
  error = report.error('re-create them, leave their files out, or train with '
                       '--skip_corrupt_records')
  if error:
    raise error


def _run_inspect(argv):
  records_flags.define_inspect_flags()
  absl_flags.adopt_module_key_flags(records_flags)
  app.run(functools.partial(errors.run_main, _inspect_main), argv=argv,
          flags_parser=flags.parse_or_exit)


# name -> (what it converts, runner given [program name] + the subcommand's arguments).
# A new converter is one entry here and one define_*_flags() in flags/records.py.
_SUBCOMMANDS = {
    'images': ('a folder of images, one sub-folder per class -> image TFRecords',
               _run_images),
    'sequences': ('a genome FASTA, a BED of regions and bedGraph coverage tracks -> '
                  'basenji TFRecords', _run_sequences),
    'inspect': ('reads every record of GLOB; reports labels, sizes, formats and every '
                'bad record by file and index', _run_inspect),
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
