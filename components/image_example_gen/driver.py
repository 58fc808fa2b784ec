"""Driver of ImageExampleGen: fingerprints the whole image tree.

TFX's file-based driver fingerprints only the files its split glob matches
at one level, so images added deep inside the tree would not change the
fingerprint and a re-run would be served from cache. This driver fingerprints
every file of the executor's own walk (`walk.walk_tree`: names, sizes and
mtimes), so new, removed, renamed or changed images make ingestion run again;
unchanged inputs, and changes inside pruned folders, stay cached.
"""
import hashlib
import os
from typing import Optional

import tensorflow as tf
from tfx.components.example_gen import driver
from tfx.components.example_gen import input_processor

from components.image_example_gen import walk


def _stat(path: str):
  """(size, mtime in ns); os.stat for local files, where tf.io.gfile.stat
  rounds mtime to whole seconds and would miss a quick same-size rewrite.

  A broken link or a link loop is fingerprinted by the link itself (its
  target appearing changes it), a file gone since the walk as (-1, -1):
  ingestion rejects or skips them, and the fingerprint must not crash.
  """
  if '://' not in path:
    try:
      stat = os.stat(path)
    except OSError:
      try:
        stat = os.lstat(path)
      except OSError:
        return -1, -1
    return stat.st_size, stat.st_mtime_ns
  try:
    stat = tf.io.gfile.stat(path)
  except tf.errors.NotFoundError:
    return -1, -1
  return stat.length, stat.mtime_nsec


def tree_fingerprint(input_base: str) -> str:
  """Order-independent fingerprint of every file the ingestion walk sees."""
  digest = hashlib.sha256()
  num_files = total_bytes = 0
  entries = []
  for entry in walk.walk_tree(input_base):
    if entry.kind in (walk.PRUNED_FOLDER, walk.FOLLOWED_LINK):
      continue
    size, mtime_ns = _stat(entry.path)
    entries.append(f'{entry.rel_path}\0{size}\0{mtime_ns}')
    num_files += 1
    total_bytes += max(size, 0)
  for entry in sorted(entries):
    digest.update(entry.encode())
    digest.update(b'\n')
  return (f'tree:{input_base},num_files:{num_files},total_bytes:{total_bytes},'
          f'sha256:{digest.hexdigest()}')


class _TreeInputProcessor(input_processor.FileBasedInputProcessor):

  def get_input_fingerprint(self, span: int,
                            version: Optional[int]) -> str:
    return tree_fingerprint(self._input_base_uri)


class ImageTreeDriver(driver.FileBasedDriver):
  """FileBasedDriver whose fingerprint covers the image tree recursively."""

  def get_input_processor(self, splits=None, range_config=None,
                          input_base_uri=None):
    return _TreeInputProcessor(input_base_uri, splits, range_config)
