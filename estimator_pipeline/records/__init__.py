r"""Converters that write TFRecords the pipeline reads, and their command line.

  python -m estimator_pipeline.records images --image_dir=photos/ --output_dir=data/ \
      --validation_fraction=0.1 --num_shards=4

What a record is lives in one format module per layout: image_format.py (slim's image
records, labels.txt) and sequence_format.py (basenji's records, statistics.json,
targets.txt), registered in format.py; dna.py is the one DNA codec. The converters
write them: images.py (a folder of images, one sub-folder per class; its input side in
image_files.py) and sequences.py (a genome and its coverage tracks: fasta_index.py
reads the FASTA by random access, tracks.py and interval_store.py the bigWigs and
bedGraphs, targets_table.py the tracks' table, genome_tiling.py picks the windows,
genome_windows.py and record_file.py make and write the records in worker processes,
sequence_output.py the rest of the output; genome_files.py reads BED and text files).
inspect.py reads records back and names every bad one. Each converter is a library
function that tests and the demo call directly; __main__.py only maps flags onto it.
"""
