"""The parse function of basenji records: serialized record -> ({'sequence'}, target).

It decodes with the sequence format's decoder (records/sequence_format.py) and
augments with sequence_ops.py, the ops the exported ensemble runs too:

  python -c "
  import estimator_pipeline
  from estimator_pipeline.data import sequence_parse
  from estimator_pipeline.records import sequence_format
  layout = sequence_format.SequenceLayout(seq_length=1024, seq_1hot=False,
      target_length=8, num_targets=2, target_bytes=True)
  print(sequence_parse.make_sequence_parse_fn(layout, is_training=False))"
"""

from estimator_pipeline.data import parse
from estimator_pipeline.data import sequence_ops
from estimator_pipeline.records import sequence_format


def make_sequence_parse_fn(layout, *, is_training, augment_rc=False, augment_shift=0,
                           seed=None, strand_pair=None):
  """serialized basenji record -> ({'sequence': float32 [L, 4]}, float32 [T, N]).

  layout: a sequence_format.SequenceLayout. Training applies the params' augment_rc
  (reverse complement, targets flipped along length) and augment_shift (random shift
  in [-k, k], zero padded); evaluation reads the records as they are. strand_pair:
  see sequence_ops.augment_sequence.
  """
  decoder = sequence_format.SequenceRecordDecoder(layout)

  def parse_fn(serialized):
    item = decoder.decode(serialized)
    sequence, target = item['sequence'], parse.checked_target(item['target'])
    if is_training:
      sequence, target = sequence_ops.augment_sequence(
          sequence, target, augment_rc=augment_rc, augment_shift=augment_shift,
          seed=seed, strand_pair=strand_pair)
    return {'sequence': sequence}, target

  return parse_fn
