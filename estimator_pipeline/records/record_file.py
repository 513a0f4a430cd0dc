r"""ZLIB TFRecord files of tf.train.Examples, written without importing TensorFlow.

The genome converter's worker processes write records; TensorFlow must not be forked
once it has started, and a spawned worker that imported it would spend seconds and
hundreds of MB on it. This module writes the same bytes as TensorFlow's own writer:

  tf.io.TFRecordWriter(path, tf.io.TFRecordOptions(**record_file.TF_OPTIONS))
  writer.write(example.SerializeToString(deterministic=True))

for an Example whose features are all one bytes value each (tests compare both byte
for byte). Deflate uses Huffman coding only (Z_HUFFMAN_ONLY): base indices carry about
2 bits a base, which Huffman coding captures on its own; string matching, the default,
takes over ten times as long on DNA and makes the files larger, not smaller.

The deflate is zlib-ng's (the zlib-ng package), not the standard library's zlib: for a
Huffman-only stream it writes zlib's bytes exactly, in about half the time, and the
deflate is most of what writing a record costs (bench/CHANGES.md, 15).

  python -c "
  from estimator_pipeline.records import record_file
  with record_file.RecordFile('/tmp/x.tfr') as f:
    f.write(record_file.example_bytes([('sequence', b'\x00\x01'), ('target', b'')]))"
"""

import struct
import zlib

import google_crc32c
from zlib_ng import zlib_ng

# tf.io.TFRecordOptions(**TF_OPTIONS) writes what RecordFile writes.
TF_OPTIONS = {'compression_type': 'ZLIB', 'compression_strategy': zlib.Z_HUFFMAN_ONLY,
              'mem_level': 9, 'window_bits': 15}
_MASK_DELTA = 0xa282ead8


def masked_crc32c(data):
  """The CRC32C of data, masked as TFRecord framing stores it."""
  crc = google_crc32c.value(data)
  return ((((crc >> 15) | (crc << 17)) & 0xffffffff) + _MASK_DELTA) & 0xffffffff


def _varint(value):
  out = bytearray()
  while True:
    byte = value & 0x7f
    value >>= 7
    if value:
      out.append(byte | 0x80)
    else:
      out.append(byte)
      return bytes(out)


def _header(number, length):
  """The tag and length of a length-delimited protobuf field (wire type 2)."""
  return _varint(number << 3 | 2) + _varint(length)


def example_bytes(features):
  """A serialized tf.train.Example of (key, bytes) pairs, one bytes value per key.

  The same bytes as tf.train.Example(...).SerializeToString(deterministic=True):
  Example.features (1) -> Features.feature (1, a map entry per key, sorted by key:
  key 1, value 2) -> Feature.bytes_list (1) -> BytesList.value (1). The headers are
  worked out from the lengths first, so that each value is copied once, into the
  result (a window's bases are 131072 bytes).
  """
  pieces, size = [], 0
  for key, value in sorted(features):
    key = key.encode('utf-8')
    bytes_list = _header(1, len(value))  # BytesList.value
    feature = _header(1, len(bytes_list) + len(value))  # Feature.bytes_list
    entry_value = _header(2, len(feature) + len(bytes_list) + len(value))
    entry_key = _header(1, len(key)) + key
    entry = _header(1, len(entry_key) + len(entry_value) + len(feature) +
                    len(bytes_list) + len(value))  # Features.feature, one entry
    head = entry + entry_key + entry_value + feature + bytes_list
    pieces += [head, value]
    size += len(head) + len(value)
  return b''.join([_header(1, size)] + pieces)


class RecordFile:
  """One ZLIB-compressed TFRecord file, written record by record.

  The file is one deflate stream of framed records: length (uint64), its masked CRC,
  the data, the data's masked CRC. Nothing is buffered beyond zlib's own window.
  """

  def __init__(self, path):
    self.path = path
    self.count = 0
    self._file = open(path, 'wb')
    self._deflate = zlib_ng.compressobj(
        zlib_ng.Z_DEFAULT_COMPRESSION, zlib_ng.DEFLATED, TF_OPTIONS['window_bits'],
        TF_OPTIONS['mem_level'], TF_OPTIONS['compression_strategy'])

  def write(self, record):
    length = struct.pack('<Q', len(record))
    # Three calls rather than one of the framed record: the deflate's bytes do not
    # depend on how its input is cut, and the record is not copied again.
    deflate = self._deflate.compress
    self._file.write(b''.join((
        deflate(length + struct.pack('<I', masked_crc32c(length))), deflate(record),
        deflate(struct.pack('<I', masked_crc32c(record))))))
    self.count += 1

  def close(self):
    if self._file.closed:
      return
    try:
      self._file.write(self._deflate.flush())
    finally:
      self._file.close()

  def __enter__(self):
    return self

  def __exit__(self, *exc_info):
    self.close()
