"""The one walk of an image tree, shared by everything that looks at one.

Ingestion's listing, the driver's fingerprint and the Kaggle preflight
(``runners.kaggle_data.has_images``) all see the tree through `walk_tree`, so
they cannot disagree about what is in it:

* hidden folders and archive junk (``__MACOSX``, any ``__*``) are pruned;
* a symlinked folder is followed, each real folder once, so a link loop ends
  (the second way in is a pruned folder, reported as ignored);
* every other file is an entry: a candidate when it has an image name (JPEG,
  PNG or DICOM `.dcm`, `naming.is_image_name`) and
  sits below a NORMAL/PNEUMONIA folder, ignored otherwise. Broken links,
  FIFOs and the like are entries too: inspection rejects them by name;
* a link (to a file or folder) leading outside input_base is followed, and
  where it leads is recorded (`real_path`; the ingestion report's
  ``followed_links``): its images are ingested under their in-tree path,
  never silently.

Local paths are walked with ``os``; URIs (``gs://...``) with ``tf.io.gfile``,
imported only then, so the preflight does not load TensorFlow.
"""
import os
import posixpath
from typing import Dict, Iterator, List, NamedTuple, Optional, Tuple

from components.image_example_gen import naming

CANDIDATE, IGNORED_FILE, PRUNED_FOLDER = 'candidate', 'ignored', 'pruned'
# A symlinked folder leading outside input_base, walked (its files follow).
FOLLOWED_LINK = 'followed_link'


class Candidate(NamedTuple):
  """An image file found under a label folder."""
  path: str  # absolute (or URI) path, as read
  rel_path: str  # posix path relative to input_base, as reported
  label: int


class Entry(NamedTuple):
  """One thing the walk met below input_base."""
  kind: str  # CANDIDATE, IGNORED_FILE, PRUNED_FOLDER (not descended into)
  #           or FOLLOWED_LINK
  path: str  # absolute (or URI) path, as read
  rel_path: str  # posix, relative to input_base; a folder's ends in '/'
  label: Optional[int] = None  # of a CANDIDATE only
  # Of a FOLLOWED_LINK, or a CANDIDATE that is a link leading outside
  # input_base: the real path it leads to.
  real_path: Optional[str] = None


class Listing(NamedTuple):
  """What ingestion reads, and what the report says about the rest."""
  candidates: List[Candidate]
  ignored: List[str]  # relative paths; folders end in '/'
  followed_links: List[Dict[str, str]]  # {'path', 'real_path'}


def _is_uri(path: str) -> bool:
  return '://' in path


def _rel(path: str, base: str) -> str:
  rel = (path[len(base.rstrip('/')) + 1:] if _is_uri(base)
         else os.path.relpath(path, base))
  return rel.replace(os.sep, '/')


def _outside(real: str, base_real: str) -> bool:
  return os.path.commonpath([real, base_real]) != base_real


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
  local = not _is_uri(input_base)
  base_real = os.path.realpath(input_base) if local else ''
  for root, dirs, files in _walk(input_base):
    rel_root = _rel(root, input_base)
    if local:
      real = os.path.realpath(root)
      if real in seen:  # a second way into a folder already walked
        dirs[:] = []
        yield Entry(PRUNED_FOLDER, root, rel_root + '/')
        continue
      seen.add(real)
      if os.path.islink(root) and _outside(real, base_real):
        yield Entry(FOLLOWED_LINK, root, rel_root + '/', real_path=real)
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
        continue
      real = None
      if local and os.path.islink(path) and os.path.isfile(path):
        # Broken links and links to devices are not followed (inspection
        # rejects them): not recorded as followed.
        real = os.path.realpath(path)
        real = real if _outside(real, base_real) else None
      yield Entry(CANDIDATE, path, rel_path, label, real)


def _isdir(path: str) -> bool:
  if _is_uri(path):
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    return tf.io.gfile.isdir(path)
  return os.path.isdir(path)


def list_tree(input_base: str) -> Listing:
  """Image files below label folders, what was ignored and which links
  leading outside input_base were followed.

  Ignored are pruned folders (with a trailing '/'), files with an image
  extension outside any NORMAL/PNEUMONIA folder and files with another
  extension; the ingestion report lists them, and the followed links.

  Raises:
    FileNotFoundError: input_base is not a folder (a typo must not ingest
      nothing quietly).
  """
  if not _isdir(input_base):
    raise FileNotFoundError(f'input folder {input_base!r} does not exist')
  listing = Listing([], [], [])
  for entry in walk_tree(input_base):
    if entry.real_path is not None:
      listing.followed_links.append({'path': entry.rel_path,
                                     'real_path': entry.real_path})
    if entry.kind == CANDIDATE:
      listing.candidates.append(
          Candidate(entry.path, entry.rel_path, entry.label))
    elif entry.kind != FOLLOWED_LINK:
      listing.ignored.append(entry.rel_path)
  return listing


def list_images(input_base: str) -> Tuple[List[Candidate], List[str]]:
  """`list_tree`'s candidates and ignored paths."""
  listing = list_tree(input_base)
  return listing.candidates, listing.ignored
