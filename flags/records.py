"""Flags of the record converters; the defaults live with the library functions.

  python -m estimator_pipeline.records images --help
  python -m estimator_pipeline.records sequences --help
"""

from absl import flags as absl_flags

from estimator_pipeline.records import images
from estimator_pipeline.records import sequences
from flags.common import define_own


def define_images_flags():
  """Defines the flags of `python -m estimator_pipeline.records images`. Idempotent."""
  define_own(absl_flags.DEFINE_string, 'image_dir', '',
             'Folder with one sub-folder of images per class, e.g. photos/ holding '
             'photos/daisy/1.jpg; the sorted sub-folder names become labels 0..K-1.')
  define_own(absl_flags.DEFINE_string, 'output_dir', '',
             'Folder for the train-*.tfrecord and validation-*.tfrecord shards and '
             'labels.txt; it is created if it does not exist.')
  define_own(absl_flags.DEFINE_float, 'validation_fraction', images.DEFAULT_VALIDATION_FRACTION,
             'Fraction of the images, taken from every class alike, that goes into the '
             'validation shards; must be in [0, 1).')
  define_own(absl_flags.DEFINE_integer, 'num_shards', images.DEFAULT_NUM_SHARDS,
             'Number of shard files per split; a split with fewer images than this gets '
             'one shard per image.')
  define_own(absl_flags.DEFINE_integer, 'seed', images.DEFAULT_SEED,
             'Seed of the shuffle and of the train/validation split; the same folder and '
             'seed give byte-identical files.')
  define_own(absl_flags.DEFINE_integer, 'num_workers', 0,
             'Threads that read, check and re-encode images; 0 uses one per CPU. The '
             'output does not depend on it.')
  define_own(absl_flags.DEFINE_boolean, 'overwrite', False,
             'Replace the .tfrecord files output_dir already holds instead of refusing to '
             'run.')


def define_sequences_flags():
  """Defines the flags of `python -m estimator_pipeline.records sequences`. Idempotent."""
  _define_sequence_inputs()
  _define_sequence_windows()
  _define_sequence_targets()


def _define_sequence_inputs():
  define_own(absl_flags.DEFINE_string, 'fasta', '',
             'FASTA file of the genome, e.g. hg38.fa: plain, bgzip-compressed, or gzip '
             '(unpacked to a temporary file first). It is read by random access '
             'through its .fai index, which is written beside it if missing.')
  define_own(absl_flags.DEFINE_string, 'targets_file', '',
             "basenji's targets table (tab-separated: index, identifier, file, clip, "
             'clip_soft, scale, sum_stat, description), one line per track; file is a '
             'bigWig or a bedGraph. Give this or --coverage.')
  define_own(absl_flags.DEFINE_list, 'coverage', [],
             'Comma-separated bigWig or bedGraph files (bedGraphs plain or gzipped), '
             'one per target track, e.g. dnase.bw,cage.bedGraph.gz; instead of '
             '--targets_file.')
  define_own(absl_flags.DEFINE_string, 'bed', '',
             'BED file of regions to write, e.g. peaks.bed; each is centred in a '
             'window of --seq_length bases, and a 4th column train/valid/test gives '
             'its split unless --valid_chroms or --test_chroms are set. Empty tiles '
             'the whole genome instead, as basenji_data.py does.')
  define_own(absl_flags.DEFINE_string, 'output_dir', '',
             'Folder for tfrecords/{train,valid,test}-N.tfr, statistics.json, '
             'targets.txt and sequences.bed (and contigs.bed when tiling); it is '
             'created if it does not exist.')
  define_own(absl_flags.DEFINE_integer, 'processes', 0,
             'Worker processes that write records, each .tfr file whole; 0 uses one '
             'per CPU core (fewer when there is little to write: one per 16 Mb of '
             'windows). The output does not depend on it.')
  define_own(absl_flags.DEFINE_integer, 'seqs_per_tfr', sequences.DEFAULT_SEQS_PER_TFR,
             "Records per .tfr file (basenji's -r).")
  define_own(absl_flags.DEFINE_boolean, 'overwrite', False,
             'Replace the tfrecords/, statistics.json, targets.txt and sequences.bed '
             'that output_dir already holds instead of refusing to run.')


def _define_sequence_windows():
  define_own(absl_flags.DEFINE_integer, 'seq_length', sequences.DEFAULT_SEQ_LENGTH,
             "Bases per sequence (basenji's -l).")
  define_own(absl_flags.DEFINE_integer, 'pool_width', sequences.DEFAULT_POOL_WIDTH,
             "Bases per target bin (basenji's -w).")
  define_own(absl_flags.DEFINE_integer, 'crop_bp', sequences.DEFAULT_CROP_BP,
             'Bases cut from each end of the sequence before the targets are binned '
             "(basenji's --crop); (seq_length - 2 * crop_bp) must be a multiple of "
             'pool_width.')
  define_own(absl_flags.DEFINE_float, 'stride', sequences.DEFAULT_STRIDE,
             'Tiling: bases between the starts of train windows, or, at most 1, a '
             "fraction of --seq_length (basenji's --stride; 0.5 overlaps windows by "
             'half). Must be positive.')
  define_own(absl_flags.DEFINE_float, 'stride_test', sequences.DEFAULT_STRIDE,
             "Tiling: the same for valid and test windows (basenji's --stride_test).")
  define_own(absl_flags.DEFINE_integer, 'gap_min', sequences.DEFAULT_GAP_MIN,
             'Tiling: runs of at least this many N split the genome into contigs '
             '(basenji reads them from a gaps BED); shorter runs stay inside windows '
             'as N.')
  define_own(absl_flags.DEFINE_list, 'valid_chroms', [],
             'Chromosomes whose windows go to the valid split, e.g. chr8,chr9; with '
             "--bed, setting this or --test_chroms ignores the BED's fold column, and "
             'when tiling it replaces --valid_fraction/--test_fraction.')
  define_own(absl_flags.DEFINE_list, 'test_chroms', [],
             'Chromosomes whose windows go to the test split, e.g. chr10; all others '
             'go to train (or valid).')
  define_own(absl_flags.DEFINE_float, 'valid_fraction', sequences.DEFAULT_FRACTION,
             "Tiling without --valid_chroms/--test_chroms: the share of the genome's "
             'bases, drawn as whole contigs (seeded by --seed), that goes to valid '
             "(basenji's -v).")
  define_own(absl_flags.DEFINE_float, 'test_fraction', sequences.DEFAULT_FRACTION,
             "The same for test (basenji's -t).")
  define_own(absl_flags.DEFINE_integer, 'seed', sequences.DEFAULT_SEED,
             'Seed of the split by fraction and of the shuffle of tiled windows within '
             'each split; the same inputs and seed give byte-identical output.')


def _define_sequence_targets():
  define_own(absl_flags.DEFINE_string, 'sum_stat', sequences.DEFAULT_SUM_STAT,
             'With --coverage: how a bin sums up its bases: sum, mean, max, median, '
             "sum_sqrt, mean_sqrt or peak (basenji_data_read.py's); one value for "
             'every track or a comma-separated list with one per file.')
  define_own(absl_flags.DEFINE_string, 'clip', '',
             'With --coverage: clip bins to [-clip, clip]: empty for no clipping, one '
             'number for every track, or a comma-separated list with one per file.')
  define_own(absl_flags.DEFINE_string, 'clip_soft', '',
             'With --coverage: bins above it grow by the square root of the excess '
             'only; empty for none, one number, or one per file.')
  define_own(absl_flags.DEFINE_string, 'scale', '',
             "With --coverage: multiply each base's value by it before binning; empty "
             'for 1, one number, or one per file.')
  define_own(absl_flags.DEFINE_list, 'identifiers', [],
             'With --coverage: names of the tracks in targets.txt, one per file; empty '
             'uses the file names without extensions.')
  define_own(absl_flags.DEFINE_string, 'blacklist', '',
             "BED of blacklisted regions (e.g. ENCODE's hg38-blacklist.v2.bed), "
             'widened by 20 bp each side as basenji does; their bases are clipped to '
             "the window's median coverage. Empty for none.")
  define_own(absl_flags.DEFINE_string, 'umap', '',
             'BED of unmappable regions; windows with at least --umap_t of their bins '
             "unmappable are left out (basenji's -u). Empty for none.")
  define_own(absl_flags.DEFINE_float, 'umap_t', sequences.DEFAULT_UMAP_T,
             'The share of unmappable bins at which a window is left out, in (0, 1].')
  define_own(absl_flags.DEFINE_float, 'umap_clip', sequences.DEFAULT_UMAP_CLIP,
             "Below 1: unmappable bins are lowered to this quantile of their window's "
             "bins, per track (basenji's --umap_clip); 1 leaves them as they are.")
  define_own(absl_flags.DEFINE_list, 'ignore_track_chroms', [],
             'Chromosomes the tracks have data on that the FASTA leaves out on purpose '
             '(e.g. chrEBV); any other such chromosome is an error.')


def define_inspect_flags():
  """Defines the flags of `python -m estimator_pipeline.records inspect`. Idempotent."""
  define_own(absl_flags.DEFINE_string, 'record_path', '',
             "Records to inspect: a glob or comma-separated globs, e.g. 'data/*.tfrecord' "
             '(may also be given as arguments after the flags).')
  define_own(absl_flags.DEFINE_string, 'layout', '',
             'Record layout to check the records against: image or sequence (see '
             'estimator_pipeline/records/format.py); empty tells it from the first record.')
  define_own(absl_flags.DEFINE_integer, 'num_classes', 0,
             'Image records: labels must lie in [0, num_classes); 0 takes the count from a '
             'labels.txt beside the first file, or checks only that labels are not '
             'negative.')
  define_own(absl_flags.DEFINE_enum, 'compression', 'auto',
             ['auto', 'NONE', 'ZLIB', 'GZIP'],
             'Compression of the files; auto detects it per file.')
