"""The one walk of an image tree, shared by everything that looks at one.

Ingestion's listing, the driver's fingerprint and the Kaggle preflight
(``runners.kaggle_data.has_images``) all see the tree through `walk_tree`, so
they cannot disagree about what is in it:

* hidden folders and archive junk (``__MACOSX``, any ``__*``) are pruned;
* a symlinked folder is followed, each real folder once, so a link loop ends;
* every other file is an entry: a candidate when it has an image name and
  sits below a NORMAL/PNEUMONIA folder, ignored otherwise.

Local paths are walked with ``os``; URIs (``gs://...``) with ``tf.io.gfile``,
imported only then, so the preflight does not load TensorFlow.
"""
import os
import posixpath
from typing import Iterator, List, NamedTuple, Optional, Tuple

from components.image_example_gen import naming

CANDIDATE, IGNORED_FILE, PRUNED_FOLDER = 'candidate', 'ignored', 'pruned'


class Candidate(NamedTuple):
  """An image file found under a label folder."""
  path: str  # absolute (or URI) path, as read
  rel_path: str  # posix path relative to input_base, as reported
  label: int


class Entry(NamedTuple):
  """One thing the walk met below input_base."""
  kind: str  # CANDIDATE, IGNORED_FILE or PRUNED_FOLDER (not descended into)
  path: str  # absolute (or URI) path, as read
  rel_path: str  # posix, relative to input_base; a folder's ends in '/'
  label: Optional[int] = None  # of a CANDIDATE only


def _is_uri(path: str) -> bool:
  return '://' in path


def _rel(path: str, base: str) -> str:
  rel = (path[len(base.rstrip('/')) + 1:] if _is_uri(base)
         else os.path.relpath(path, base))
  return rel.replace(os.sep, '/')


def _walk(base: str):
  """Top-down (root, dirs, files) that honours in-place pruning of dirs."""
  if _is_uri(base):
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    return tf.io.gfile.walk(base, topdown=True)
  return os.walk(base, topdown=True, followlinks=True)


def walk_tree(input_base: str) -> Iterator[Entry]:
  """Every entry below input_base, folders in name order; lazy.

  A missing input_base yields nothing. Remote folder names may end in '/'
  (``tf.io.gfile``); they are compared and reported without it.
  """
  seen = set()
  for root, dirs, files in _walk(input_base):
    rel_root = _rel(root, input_base)
    if not _is_uri(root):
      real = os.path.realpath(root)
      if real in seen:  # a second way into a folder already walked
        dirs[:] = []
        yield Entry(PRUNED_FOLDER, root, rel_root + '/')
        continue
      seen.add(real)
    for name in sorted(d for d in dirs
                       if naming.is_ignored_folder(d.rstrip('/'))):
      yield Entry(PRUNED_FOLDER, os.path.join(root, name),
                  _rel(os.path.join(root, name.rstrip('/')), input_base) + '/')
    dirs[:] = sorted(d for d in dirs
                     if not naming.is_ignored_folder(d.rstrip('/')))
    parts = [] if rel_root == '.' else rel_root.split('/')
    label = naming.label_of(parts)
    for name in sorted(files):
      path = os.path.join(root, name)
      rel_path = posixpath.join(*parts, name) if parts else name
      if label is None or not naming.is_image_name(name):
        yield Entry(IGNORED_FILE, path, rel_path)
      else:
        yield Entry(CANDIDATE, path, rel_path, label)


def _isdir(path: str) -> bool:
  if _is_uri(path):
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    return tf.io.gfile.isdir(path)
  return os.path.isdir(path)


def list_images(input_base: str) -> Tuple[List[Candidate], List[str]]:
  """Image files below label folders, and what was ignored (relative paths).

  Ignored are pruned folders (with a trailing '/'), files with an image
  extension outside any NORMAL/PNEUMONIA folder and files with another
  extension; the ingestion report lists them.

  Raises:
    FileNotFoundError: input_base is not a folder (a typo must not ingest
      nothing quietly).
  """
  if not _isdir(input_base):
    raise FileNotFoundError(f'input folder {input_base!r} does not exist')
  candidates, ignored = [], []
  for entry in walk_tree(input_base):
    if entry.kind == CANDIDATE:
      candidates.append(Candidate(entry.path, entry.rel_path, entry.label))
    else:
      ignored.append(entry.rel_path)
  return candidates, ignored
