"""The run report's gallery: Grad-CAM heat maps of chosen test images.

From the test split, scored by the candidate SavedModel's own
`serving_examples` signature (as TFMA scores it), at the model's operating
threshold (its `threshold` variable): the most confident true positives
(highest probability among PNEUMONIA called PNEUMONIA), the false
positives (highest probability among NORMAL called PNEUMONIA) and the false
negatives (lowest probability among PNEUMONIA called NORMAL), PER_GROUP
each. Each gets a PNG beside the report: the X-ray with the heat map of
the model's `explain` signature (trainer/gradcam.py) over it. Plain
tf.saved_model.load, no trainer code. A model without `explain` (exported
before it) or without a test split gets no gallery, and the page says why.
"""
import dataclasses
import os
from typing import Dict, List, Optional, Sequence, Tuple

import jinja2
import markupsafe
import numpy as np
import tensorflow as tf
from tfx.types import artifact_utils
from tfx.types import standard_artifacts
from tfx.utils import path_utils

from components.run_report import overlay
from contract import names as constants

TEST_SPLIT = 'test'
PER_GROUP = 4
_BATCH = 32
# (key, heading): the order on the page.
GROUPS = (('true_positives', 'Most confident true positives'),
          ('false_positives', 'False positives (most confident first)'),
          ('false_negatives', 'False negatives (most confident first)'))


@dataclasses.dataclass(frozen=True)
class Item:
  file: str  # the PNG's name, beside report.html
  source: str  # the image's source_path
  probability: float
  truth: str  # the label name


@dataclasses.dataclass(frozen=True)
class Gallery:
  threshold: Optional[float] = None
  images: int = 0  # test images scored
  groups: Tuple[Tuple[str, str, Tuple[Item, ...]], ...] = ()
  problem: Optional[str] = None  # why there is no gallery


def choose(probabilities: Sequence[float], labels: Sequence[int],
           threshold: float, per_group: int = PER_GROUP
           ) -> Dict[str, List[int]]:
  """{group key: indices}, most confident first (ties: the earlier)."""
  p = np.asarray(probabilities, np.float32)
  y = np.asarray(labels)
  called = p >= np.float32(threshold)  # as the serving graph labels
  order = np.argsort(-p, kind='stable')
  rising = np.argsort(p, kind='stable')
  pick = lambda idx, keep: [int(i) for i in idx if keep[i]][:per_group]
  return {
      'true_positives': pick(order, called & (y == constants.PNEUMONIA)),
      'false_positives': pick(order, called & (y == constants.NORMAL)),
      'false_negatives': pick(rising, ~called & (y == constants.PNEUMONIA)),
  }


def split_files(examples_uri: str, split: str = TEST_SPLIT) -> List[str]:
  examples = standard_artifacts.Examples()
  examples.uri = examples_uri
  examples.split_names = artifact_utils.encode_split_names([split])
  return sorted(tf.io.gfile.glob(os.path.join(
      artifact_utils.get_split_uri([examples], split), '*')))


def _records(files: List[str]) -> tf.data.Dataset:
  return tf.data.TFRecordDataset(files, compression_type='GZIP')


def _features(record: bytes) -> Tuple[bytes, int, str]:
  feature = tf.train.Example.FromString(record).features.feature
  return (feature[constants.IMAGE_KEY].bytes_list.value[0],
          int(feature[constants.LABEL_KEY].int64_list.value[0]),
          feature[constants.SOURCE_PATH_KEY].bytes_list.value[0].decode()
          if constants.SOURCE_PATH_KEY in feature else '')


def build(model_dir: str, examples_uri: str, folder: str,
          per_group: int = PER_GROUP) -> Gallery:
  """Scores the test split, chooses, draws the PNGs into folder."""
  loaded = tf.saved_model.load(model_dir)
  explain = loaded.signatures.get(constants.EXPLAIN_SIGNATURE)
  if explain is None:
    return Gallery(problem=f'the model has no {constants.EXPLAIN_SIGNATURE!r}'
                   ' signature (exported before Grad-CAM)')
  files = split_files(examples_uri)
  if not files:
    return Gallery(problem=f'no {TEST_SPLIT} split in {examples_uri}')
  threshold = float(loaded.threshold.numpy())
  serve = loaded.signatures[constants.EXAMPLES_SIGNATURE]
  probabilities, labels = [], []
  for batch in _records(files).batch(_BATCH):
    out = serve(**{constants.EXAMPLES_INPUT: batch})
    probabilities.extend(out[constants.PROBABILITY_OUTPUT].numpy().tolist())
    labels.extend(_features(r)[1] for r in batch.numpy())
  chosen = choose(probabilities, labels, threshold, per_group)
  wanted = {i for indices in chosen.values() for i in indices}
  # A second pass keeps only the chosen images' bytes in memory.
  kept = {i: _features(r.numpy()) for i, r in enumerate(_records(files))
          if i in wanted}
  groups = []
  for key, heading in GROUPS:
    items = []
    for rank, index in enumerate(chosen[key]):
      data, label, source = kept[index]
      out = explain(**{constants.EXPLAIN_INPUT: tf.constant([data])})
      probability = float(out[constants.PROBABILITY_OUTPUT].numpy()[0])
      name = f'gallery-{key}-{rank + 1}.png'
      overlay.write_overlay(data, out[constants.HEAT_MAP_OUTPUT].numpy()[0],
                    f'{constants.LABEL_NAMES[label]}, p = {probability:.3f}',
                    os.path.join(folder, name))
      items.append(Item(name, source, probability,
                        constants.LABEL_NAMES[label]))
    groups.append((key, heading, tuple(items)))
  return Gallery(threshold, len(probabilities), tuple(groups))


def for_run(inputs: Dict[str, List[str]], folder: str, model_key: str,
            examples_key: str) -> Optional[Gallery]:
  """The gallery of a run's inputs ({key: [uri]}); None before a model and
  examples exist; a Gallery with a problem if it fails (never raises)."""
  model, examples = inputs.get(model_key), inputs.get(examples_key)
  if not model or not examples:
    return None
  try:
    return build(path_utils.serving_model_path(model[0]), examples[0],
                 folder)
  except Exception as e:  # pylint: disable=broad-except
    return Gallery(problem=f'{type(e).__name__}: {e}'.splitlines()[0])


_FRAGMENT = jinja2.Environment(autoescape=True).from_string(
    '<section id="gallery"><h2>Grad-CAM gallery</h2>'
    '{% if g.problem %}<p>No gallery: {{ g.problem }}.</p>{% else %}'
    '<p>{{ g.images }} test images at the operating threshold '
    '{{ "%.4f"|format(g.threshold) }}; the heat map (trainer/gradcam.py) '
    'shows where the model\'s score came from (red: most).</p>'
    '{% for key, heading, items in g.groups %}<h3>{{ heading }}</h3>'
    '{% if not items %}<p>None.</p>{% endif %}<div class="gallery">'
    '{% for item in items %}<figure><img src="{{ item.file }}" width="240" '
    'alt="{{ item.source }}"><figcaption>{{ item.source }}<br>'
    '{{ item.truth }}, p = {{ "%.3f"|format(item.probability) }}'
    '</figcaption></figure>{% endfor %}</div>{% endfor %}{% endif %}'
    '</section>\n')


def render(gallery: Optional[Gallery]) -> markupsafe.Markup:
  """The page's gallery section (empty without a gallery), escaped."""
  if gallery is None:
    return markupsafe.Markup('')
  return markupsafe.Markup(_FRAGMENT.render(g=gallery))
