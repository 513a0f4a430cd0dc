"""Synthetic benchmark data: the same JPEG bytes as slim TFRecords and as image files.

  python -c "from bench import data; print(data.make_image_set('/tmp/b', 64, 300, 400))"
"""

import os

import tensorflow as tf

from bench import common


def _example(encoded, label, height, width):
  feature = {
      'image/encoded': tf.train.Feature(bytes_list=tf.train.BytesList(value=[encoded])),
      'image/format': tf.train.Feature(bytes_list=tf.train.BytesList(value=[b'jpeg'])),
      'image/class/label': tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
      'image/height': tf.train.Feature(int64_list=tf.train.Int64List(value=[height])),
      'image/width': tf.train.Feature(int64_list=tf.train.Int64List(value=[width])),
  }
  return tf.train.Example(features=tf.train.Features(feature=feature))


def make_image_set(directory, count, height, width, num_classes=4, num_shards=4,
                   seed=0, folder=True, quality=90):
  """Writes `count` JPEGs as records (train-*) + labels.txt, and as class folders.

  Returns {'records': glob, 'folder': dir or None, 'encoded': [bytes], 'labels': [int],
  'bytes': total encoded bytes}.
  """
  os.makedirs(directory, exist_ok=True)
  folder_dir = os.path.join(directory, 'images') if folder else None
  encoded_all, labels = [], []
  writers = [tf.io.TFRecordWriter(os.path.join(
      directory, 'train-%05d-of-%05d.tfrecord' % (s, num_shards)))
             for s in range(num_shards)]
  try:
    for i, (pixels, label) in enumerate(common.synthetic_images(
        count, height, width, seed=seed, num_classes=num_classes)):
      encoded = tf.io.encode_jpeg(pixels, quality=quality).numpy()
      writers[i % num_shards].write(
          _example(encoded, label, height, width).SerializeToString())
      encoded_all.append(encoded)
      labels.append(label)
      if folder_dir:
        class_dir = os.path.join(folder_dir, 'class%d' % label)
        os.makedirs(class_dir, exist_ok=True)
        with open(os.path.join(class_dir, '%05d.jpg' % i), 'wb') as f:
          f.write(encoded)
  finally:
    for w in writers:
      w.close()
  with open(os.path.join(directory, 'labels.txt'), 'w') as f:
    f.write(''.join('%d:class%d\n' % (c, c) for c in range(num_classes)))
  return {'records': os.path.join(directory, 'train-*'), 'folder': folder_dir,
          'encoded': encoded_all, 'labels': labels,
          'bytes': sum(len(e) for e in encoded_all)}
