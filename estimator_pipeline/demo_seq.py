r"""`make demo-seq`: a Basenji-style SeqNN on a synthetic genome whose answer is known.

  python -m estimator_pipeline.demo_seq --output_dir=demo_seq_out

1. estimator_pipeline.records.synthetic_genome writes a random genome with two planted
   motifs, each driving its own coverage track (a Gaussian bump per occurrence, as
   bigWig files listed in a basenji targets table) and the motifs' positions;
2. `python -m estimator_pipeline.records sequences` tiles the genome into basenji
   records (windows overlapping by half on chr1-4 for train, chr5 valid, chr6 test),
   reading the FASTA and the bigWigs by random access;
3. `python train.py --model_name=seqnn --params_file=configs/seqnn_demo.json` trains on
   the train fold, evaluating on the valid fold, and exports SavedModels;
4. the exported serving_default predicts the held-out test fold from its DNA text, and
   Pearson R per track (over every bin of every test sequence, as basenji counts it)
   must reach --target_pearsonr;
5. `python -m export.saliency` scores every test base for track 0; the mean score at
   the planted motif that drives track 0 must beat the mean at background bases.

Each step is the command a user runs, in a subprocess, printed before it runs.
"""

import os
import shlex
import subprocess
import sys
import time

import estimator_pipeline  # noqa: F401  (applies the TF 2.15 compatibility fixes)
from estimator_pipeline.core import console

console.quiet_imports()

# pylint: disable=g-import-not-at-top,wrong-import-position
from absl import app
from absl import flags as absl_flags
import numpy as np

import flags
from estimator_pipeline.analysis import exports
from estimator_pipeline.core import files
from estimator_pipeline.core.errors import run_main
from estimator_pipeline.records import dna
from estimator_pipeline.records import sequence_format
from estimator_pipeline.records import synthetic_genome

absl_flags.DEFINE_string('output_dir', 'demo_seq_out', 'Directory for the genome, the '
                         'records, the run and the scores; it is replaced if it exists.')
absl_flags.DEFINE_integer('num_steps', 800, 'Training steps of the demo run.')
absl_flags.DEFINE_integer('seed', 0, 'Seed of the synthetic genome.')
absl_flags.DEFINE_float('target_pearsonr', 0.8, 'Held-out (test fold) Pearson R the '
                        'demo must reach; it exits with status 1 below it.')

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PARAMS = os.path.join('configs', 'seqnn_demo.json')
SEQ_LENGTH = 1024
POOL_WIDTH = 32
CROP_BP = 64
STRIDE = 0.5  # Train windows overlap by half: more training data from a small genome.
SALIENCY_TARGET = 0


def _run(args):
  command = [sys.executable] + args
  console.line('$ ' + ' '.join(shlex.quote(a) for a in ['python'] + args))
  start = time.monotonic()
  proc = subprocess.run(command, cwd=REPO)
  if proc.returncode:
    raise SystemExit(proc.returncode)
  return time.monotonic() - start


def read_records(pattern):
  """(DNA strings, targets float32 [N, T, K]) of basenji records, in file order."""
  import tensorflow as tf
  keys = (sequence_format.SEQUENCE_KEY, sequence_format.TARGET_KEY)
  features = {key: tf.io.FixedLenFeature([], tf.string) for key in keys}
  texts, targets = [], []
  for raw in tf.data.TFRecordDataset(sorted(tf.io.gfile.glob(pattern)),
                                     compression_type=sequence_format.COMPRESSION):
    parsed = tf.io.parse_single_example(raw, features)
    texts.append(dna.text(tf.io.decode_raw(parsed[keys[0]], tf.uint8).numpy()))
    targets.append(tf.io.decode_raw(parsed[keys[1]], tf.float16).numpy())
  return texts, np.stack(targets).astype(np.float32)


def held_out_pearsonr(saved_model, pattern, batch_size=64):
  """Pearson R per target between the export's predictions and the records' targets.

  The export's serving_default gets the DNA text, as a TF Serving client sends it.
  """
  texts, targets = read_records(pattern)
  export = exports.load_export(saved_model)
  inputs, outputs = export.tensors('serving_default')
  preds = np.concatenate([
      export.session.run(outputs['predictions'], {inputs['sequence']: np.array(
          [t.encode() for t in texts[i:i + batch_size]], dtype=object)})
      for i in range(0, len(texts), batch_size)])
  targets = targets.reshape(preds.shape)
  flat_p = preds.reshape(-1, preds.shape[-1])
  flat_t = targets.reshape(-1, targets.shape[-1])
  return np.array([np.corrcoef(flat_p[:, k], flat_t[:, k])[0, 1]
                   for k in range(flat_p.shape[1])])


def motif_saliency(npz_path, motifs_bed):
  """{motif name or 'background': mean score} over the scored sequences' bases."""
  scores = np.load(npz_path)
  values = scores['scores']
  sites = synthetic_genome.read_motif_sites(motifs_bed)
  masks = {name: np.zeros(values.shape, bool) for name, _ in synthetic_genome.MOTIFS}
  for i, (chrom, start, end) in enumerate(zip(scores['chroms'], scores['starts'],
                                              scores['ends'])):
    for site_start, site_end, name, _ in sites.get(str(chrom), ()):
      if site_start >= start and site_end <= end:
        masks[name][i, site_start - start:site_end - start] = True
  background = ~np.any(np.stack(list(masks.values())), axis=0)
  means = {name: float(values[mask].mean()) for name, mask in masks.items()}
  means['background'] = float(values[background].mean())
  return means


def main(argv):
  del argv
  console.quiet()
  FLAGS = absl_flags.FLAGS  # pylint: disable=invalid-name
  start = time.monotonic()
  out = files.fresh_dir(FLAGS.output_dir)
  genome_dir = os.path.join(out, 'genome')
  data_dir = os.path.join(out, 'data')
  model_dir = os.path.join(out, 'run')
  genome = synthetic_genome.write_synthetic_genome(genome_dir, seed=FLAGS.seed,
                                                   seq_length=SEQ_LENGTH)
  chroms = list(genome.chrom_lengths)
  console.line('Wrote a synthetic genome (%d chromosomes of %d bp; %s drives track 0, '
               '%s track 1) and its bigWig tracks to %s' % (
                   len(chroms), genome.chrom_lengths[chroms[0]],
                   *genome.motifs.values(), genome_dir))

  _run(['-m', 'estimator_pipeline.records', 'sequences', '--fasta=' + genome.fasta,
        '--targets_file=' + genome.targets_file, '--seq_length=%d' % SEQ_LENGTH,
        '--pool_width=%d' % POOL_WIDTH, '--crop_bp=%d' % CROP_BP,
        '--stride=%g' % STRIDE, '--valid_chroms=' + chroms[-2],
        '--test_chroms=' + chroms[-1], '--output_dir=' + data_dir])
  records = os.path.join(data_dir, 'tfrecords')
  train_seconds = _run([
      'train.py', '--model_name=seqnn', '--params_file=' + PARAMS,
      '--model_dir=' + model_dir,
      '--train_record_path=' + os.path.join(records, 'train-*.tfr'),
      '--eval_record_path=' + os.path.join(records, 'valid-*.tfr'),
      '--num_steps=%d' % FLAGS.num_steps,
      '--save_checkpoints_steps=%d' % max(1, FLAGS.num_steps // 4),
      '--log_every_steps=100'])
  best = os.path.join(model_dir, 'export', 'best')
  scores_path = os.path.join(out, 'saliency_test.npz')
  _run(['-m', 'export.saliency', '--saved_model=' + best,
        '--records=' + os.path.join(records, 'test-*.tfr'),
        '--target_index=%d' % SALIENCY_TARGET, '--output=' + scores_path])

  pearsonr = held_out_pearsonr(best, os.path.join(records, 'test-*.tfr'))
  saliency = motif_saliency(scores_path, genome.motifs_bed)
  names = list(genome.motifs)
  driver = names[SALIENCY_TARGET]
  console.line('Held-out (test fold, %s) Pearson R: %s; mean %.4f (goal %.2f).' % (
      list(genome.chrom_lengths)[-1],
      ', '.join('%s %.4f' % (n, r) for n, r in zip(names, pearsonr)),
      pearsonr.mean(), FLAGS.target_pearsonr))
  console.line('Saliency of track %d (%s) on the test fold, mean per-base score: at %s '
               '%.4f, at %s %.4f, background %.4f.' % (
                   SALIENCY_TARGET, driver, driver, saliency[driver],
                   names[1 - SALIENCY_TARGET], saliency[names[1 - SALIENCY_TARGET]],
                   saliency['background']))
  console.line('Training took %s; the whole demo %s.' % (
      console.duration(train_seconds), console.duration(time.monotonic() - start)))
  reached = pearsonr.min() >= FLAGS.target_pearsonr
  salient = saliency[driver] > saliency['background']
  console.line('Pearson R %s the goal; the planted motif %s the background.' % (
      'reached' if reached else 'MISSED',
      'stands out from' if salient else 'does NOT stand out from'))
  if not (reached and salient):
    raise SystemExit(1)


if __name__ == '__main__':
  app.run(lambda argv: run_main(main, argv), flags_parser=flags.parse_or_exit)
