"""The versions of a serving folder (TF Serving's model base path).

TF Serving serves the highest numeric entry, so a version counts as deployed
only if it would load: `newest_loadable` checks versions from the highest
down and names every broken one it passes. The Pusher numbers a new push
above every numeric entry (`highest_number`), broken or not, so TF Serving
never prefers a leftover to it.
"""
import dataclasses
import os
import re
from typing import Any, List, Optional, Sequence, Tuple

import tensorflow as tf
from google.protobuf import message
from tensorflow.core.protobuf import saved_model_pb2

from contract import layout
from contract import names as constants

# What the pipeline needs of a deployed model: the Evaluator calls
# serving_examples, TF Serving and predict.py serving_default.
SIGNATURES = (constants.SERVING_SIGNATURE, constants.EXAMPLES_SIGNATURE)
_VARIABLES_INDEX = os.path.join('variables', 'variables.index')
_DATA_SHARD = re.compile(r'^variables\.data-(\d{5})-of-(\d{5})$')


@dataclasses.dataclass(frozen=True)
class Skipped:
  """A numeric entry above the version used, and why it cannot be used."""
  version: str
  path: str
  reason: str


@dataclasses.dataclass(frozen=True)
class Found:
  """The newest loadable version (version and path None if there is none),
  the broken entries above it, newest first, and the loaded SavedModel."""
  version: Optional[str]
  path: Optional[str]
  skipped: Tuple[Skipped, ...] = ()
  loaded: Any = None


def numeric_entries(base_directory: str) -> List[Tuple[int, str, str]]:
  """(number, name, path) of every numeric entry, folder or file, highest
  first: what TF Serving would consider a version."""
  if not tf.io.gfile.isdir(base_directory):
    return []
  entries = []
  for name in tf.io.gfile.listdir(base_directory):
    name = name.rstrip('/')
    # isdigit() alone accepts '²' and '١٢'; TF Serving parses ASCII digits.
    if name.isascii() and name.isdigit():
      entries.append((int(name), name, os.path.join(base_directory, name)))
  return sorted(entries, reverse=True)


def highest_number(base_directory: str) -> Optional[int]:
  entries = numeric_entries(base_directory)
  return entries[0][0] if entries else None


def structural_problem(path: str) -> Optional[str]:
  """Why the folder cannot be a SavedModel, from its files alone (cheap)."""
  if not tf.io.gfile.isdir(path):
    return 'not a folder'
  graph = os.path.join(path, layout.SAVED_MODEL_FILE)
  if not tf.io.gfile.exists(graph):
    return f'no {layout.SAVED_MODEL_FILE}'
  proto = saved_model_pb2.SavedModel()
  try:
    with tf.io.gfile.GFile(graph, 'rb') as f:
      proto.ParseFromString(f.read())
  except message.DecodeError:
    return f'{layout.SAVED_MODEL_FILE} does not parse as a SavedModel'
  if not proto.meta_graphs:
    return f'{layout.SAVED_MODEL_FILE} holds no graph'
  needs_variables = any(node.WhichOneof('kind') == 'variable'
                        for node in proto.meta_graphs[0].object_graph_def.nodes)
  if not needs_variables:
    return None
  if not tf.io.gfile.exists(os.path.join(path, _VARIABLES_INDEX)):
    return f'its variables are missing (no {_VARIABLES_INDEX})'
  folder = os.path.join(path, 'variables')
  shards = [m for m in map(_DATA_SHARD.match, tf.io.gfile.listdir(folder))
            if m]
  if not shards:
    return 'its variables are missing (no variables/variables.data-* file)'
  total = int(shards[0].group(2))
  present = {int(m.group(1)) for m in shards}
  missing = [i for i in range(total) if i not in present]
  if missing:
    return (f'{len(missing)} of its {total} variables.data shards are '
            'missing')
  return None


def load_problem(path: str, signatures: Sequence[str] = SIGNATURES
                 ) -> Tuple[Optional[str], Any]:
  """(why it cannot be used or None, the loaded SavedModel or None).

  The structural check first names the usual breakages cheaply; loading then
  catches the rest (a truncated variables file, a bad graph): 0.3 s for the
  small CNNs, 4 s for resnet50, once per run for the version used.
  """
  problem = structural_problem(path)
  if problem:
    return problem, None
  try:
    loaded = tf.saved_model.load(path)
  except Exception as e:  # pylint: disable=broad-except
    return f'does not load ({type(e).__name__}: {_first_line(e)})', None
  missing = [name for name in signatures if name not in loaded.signatures]
  if missing:
    return f'lacks the {", ".join(missing)} signature(s)', None
  return None, loaded


def newest_loadable(base_directory: str,
                    signatures: Sequence[str] = SIGNATURES) -> Found:
  """The highest numeric version that loads, and the broken ones above it."""
  skipped = []
  for _, name, path in numeric_entries(base_directory):
    problem, loaded = load_problem(path, signatures)
    if problem is None:
      return Found(name, path, tuple(skipped), loaded)
    skipped.append(Skipped(name, path, problem))
  return Found(None, None, tuple(skipped))


def _first_line(error: Exception) -> str:
  text = str(getattr(error, 'message', None) or error).strip()
  return text.splitlines()[0][:300] if text else type(error).__name__
