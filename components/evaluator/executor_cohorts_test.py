"""The Executor run for real on tiny real data: TFMA on the test split and
on an external cohort, one blessing for both.

A small model trained for a few steps on real 32-px images is exported as
the Trainer does; internal (kermany-224) and external (kermany-224-external)
Examples hold 12 and 16 real images with different class balances, so each
cohort's numbers show which data they came from. TFMA runs in-process.
"""
import hashlib
import json
import os
import pathlib
import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_model_analysis as tfma
from tfx.components.evaluator import constants as tfx_constants
from tfx.types import artifact_utils
from tfx.types import standard_artifacts
from tfx.types import standard_component_specs as specs
from tfx.utils import json_utils
from tfx.utils import proto_utils

from components.evaluator import executor
from components.evaluator import results
from components.evaluator import eval_config as evaluation
from components.image_example_gen import encoding
from components.image_example_gen import inspection
from components.image_example_gen import walk
from contract import layout
from contract import names
from contract import options
from contract import settings
from testing import images as shared_images
from testing import support
from trainer import models
from trainer import preprocessing
from trainer import signatures

SIZE = 32
THRESHOLD = 0.375  # exactly representable: TFMA reports it back unchanged
# --direct_num_workers=1 --direct_running_mode=in_memory, and our setup.py
# (else TFX builds a package of itself for the workers).
BEAM_ARGS = settings.direct_runner_args(1)
PASSING = options.Gates(min_auc=0.0, min_recall=0.0, max_auc_drop=0.0625,
                        min_external_auc=0.0, min_external_recall=0.0)
# Internal test split: 6 + 6; external cohort: 4 NORMAL + 12 PNEUMONIA.
INTERNAL, EXTERNAL = (6, 6), (4, 12)
INTERNAL_IMAGES = ('kermany-224', 'train') + INTERNAL
EXTERNAL_IMAGES = ('kermany-224-external', 'test') + EXTERNAL
DECISION_KEYS = {'blessed', 'threshold', 'architecture', 'baseline', 'checks'}
GATED = [('auc', 'value'), ('auc', 'change'), ('recall', 'value')]


def _images(dataset: str, split: str, n_normal: int, n_pneumonia: int):
  """(path, label) of the first real images of each class, by name."""
  root = support.require_shared_data(dataset) / 'chest_xray' / split
  images = []
  for label, count in ((names.NORMAL, n_normal),
                       (names.PNEUMONIA, n_pneumonia)):
    paths = sorted((root / names.LABEL_NAMES[label]).glob('*.jpeg'))
    assert len(paths) >= count, f'too few images in {root}'
    images += [(path, label) for path in paths[:count]]
  return images


def _example(path: pathlib.Path, label: int) -> bytes:
  """The tf.Example ingestion writes for this image (the Evaluator reads
  every feature through the schema, so the test uses ingestion's own)."""
  rel_path = f'{names.LABEL_NAMES[label]}/{path.name}'
  assert path.parent.name == names.LABEL_NAMES[label], path
  inspected = inspection.inspect_image(walk.Candidate(str(path), rel_path,
                                                      label))
  assert inspected.error is None and not inspected.name_error, inspected
  return encoding.attach_image(encoding.to_example(inspected),
                               str(path.parent.parent)).SerializeToString()


def _examples(root: pathlib.Path, split: str, images, **properties):
  artifact = standard_artifacts.Examples()
  artifact.uri = str(root)
  artifact.split_names = artifact_utils.encode_split_names([split])
  for key, value in properties.items():
    artifact.set_int_custom_property(key, value)
  folder = root / f'Split-{split}'
  folder.mkdir(parents=True)
  options_ = tf.io.TFRecordOptions(compression_type='GZIP')
  with tf.io.TFRecordWriter(str(folder / 'data.gz'), options_) as writer:
    for path, label in images:
      writer.write(_example(path, label))
  return artifact


@pytest.fixture(scope='module')
def data(tmp_path_factory):
  """The Trainer's Model, the schema, and both cohorts' Examples."""
  root = tmp_path_factory.mktemp('run')
  keras.utils.set_random_seed(0)
  train = shared_images.real_images(8, 8, offset=20)
  x = tf.stack([preprocessing.preprocess_image(raw, SIZE)
                for raw, _ in train])
  y = np.array([label for _, label in train], np.float32)
  built = models.build_model('baseline_cnn', SIZE, 1)
  built.compile(optimizer=keras.optimizers.Adam(1e-3),
                loss='binary_crossentropy')
  built.fit(x, y, epochs=3, batch_size=16, verbose=0)
  model = standard_artifacts.Model()
  model.uri = str(root / 'Trainer' / 'model' / '1')
  signatures.export(built, os.path.join(model.uri, 'Format-Serving'), SIZE,
                    THRESHOLD, info={'architecture': 'baseline_cnn'})
  schema = standard_artifacts.Schema()
  schema.uri = str(root / 'Schema')
  os.makedirs(schema.uri)
  shutil.copy(settings.SCHEMA_PATH, schema.uri)
  return {
      'model': model, 'schema': schema,
      'internal': _examples(root / 'Examples', 'test',
                            _images(*INTERNAL_IMAGES)),
      'external': _examples(root / 'External', names.EXTERNAL_SPLIT,
                            _images(*EXTERNAL_IMAGES),
                            **{layout.COHORT_PRESENT: 1}),
      'root': root}


def _deployed(model=None):
  """DeployedModel's output: the same SavedModel as `model`, or nothing."""
  artifact = standard_artifacts.Model()
  if model is None:
    artifact.uri = '/nonexistent/deployed'
    artifact.set_int_custom_property(layout.DEPLOYED_FOUND, 0)
    return artifact
  artifact.uri = model.uri
  artifact.set_int_custom_property(layout.DEPLOYED_FOUND, 1)
  artifact.set_string_custom_property(layout.DEPLOYED_VERSION, '7')
  artifact.set_string_custom_property(layout.DEPLOYED_PATH, '/serving/7')
  return artifact


def _run(data, name, external=None, baseline=None, gates=PASSING):
  """Runs the Executor; returns (evaluation uri, blessing, decision)."""
  out = data['root'] / name
  evaluation_artifact = standard_artifacts.ModelEvaluation()
  evaluation_artifact.uri = str(out / 'evaluation')
  blessing = standard_artifacts.ModelBlessing()
  blessing.uri = str(out / 'blessing')
  inputs = {specs.EXAMPLES_KEY: [data['internal']],
            specs.MODEL_KEY: [data['model']],
            specs.BASELINE_MODEL_KEY: [_deployed(baseline)],
            specs.SCHEMA_KEY: [data['schema']]}
  if external is not None:
    inputs[executor.EXTERNAL_EXAMPLES_KEY] = [external]
  properties = {
      specs.EVAL_CONFIG_KEY: proto_utils.proto_to_json(
          evaluation.eval_config(options.Gates())),
      specs.EXAMPLE_SPLITS_KEY: json_utils.dumps(['test']),
      **options.runtime_values(gates)}
  executor.Executor(executor.Executor.Context(
      beam_pipeline_args=BEAM_ARGS, tmp_dir=str(out / 'tmp'))).Do(
          inputs, {specs.EVALUATION_KEY: [evaluation_artifact],
                   specs.BLESSING_KEY: [blessing]}, properties)
  with open(os.path.join(evaluation_artifact.uri, layout.DECISION_FILE)) as f:
    return evaluation_artifact.uri, blessing, json.load(f)


def _blessed_on_disk(blessing) -> bool:
  marks = {name for name in (tfx_constants.BLESSED_FILE_NAME,
                             tfx_constants.NOT_BLESSED_FILE_NAME)
           if os.path.exists(os.path.join(blessing.uri, name))}
  assert len(marks) == 1, marks
  blessed = marks == {tfx_constants.BLESSED_FILE_NAME}
  assert blessing.get_int_custom_property(layout.BLESSED) == int(blessed)
  return blessed


def _checks(decision, cohort):
  return {(c['metric'], c['kind']): c for c in decision['checks']
          if c['cohort'] == cohort}


@pytest.fixture(scope='module')
def passing(data):
  """Both cohorts, the same model deployed as the baseline, lax gates."""
  return _run(data, 'passing', external=data['external'],
              baseline=data['model'])


@pytest.fixture(scope='module')
def external_fails(data):
  """Both cohorts, nothing deployed, an external AUC bound none can meet."""
  return _run(data, 'external_fails', external=data['external'],
              gates=options.Gates(min_auc=0.0, min_recall=0.0,
                                  min_external_auc=1.01,
                                  min_external_recall=0.0))


def test_both_cohorts_are_evaluated_with_the_same_metrics_and_threshold(
    data, passing):
  uri, _, _ = passing
  external_uri = os.path.join(uri, layout.EXTERNAL_EVALUATION_DIR)
  internal, external = (results.load_metrics(uri),
                        results.load_metrics(external_uri))
  overall = layout.OVERALL
  for metrics, (normal, pneumonia) in ((internal, INTERNAL),
                                       (external, EXTERNAL)):
    for model in (layout.CANDIDATE, layout.BASELINE):
      assert metrics[(overall, model, 'example_count')] == normal + pneumonia
      assert metrics[(overall, model, 'mean_label')] == pytest.approx(
          pneumonia / (normal + pneumonia))
      [matrix] = metrics[(overall, model, 'confusion_matrix')]
      assert matrix['threshold'] == pytest.approx(THRESHOLD)
      assert matrix['tp'] + matrix['fn'] == pneumonia
  # Same metrics and slices in both cohorts.
  assert ({k for k in internal if k[0] == overall} ==
          {k for k in external if k[0] == overall})
  assert {k[0] for k in external} >= {overall, 'subtype=normal',
                                      'subtype=bacteria'}
  # The external numbers are the model's on the external images.
  loaded = tf.saved_model.load(os.path.join(data['model'].uri,
                                            'Format-Serving'))
  serialized = [_example(path, label)
                for path, label in _images(*EXTERNAL_IMAGES)]
  probabilities = loaded.signatures[names.EXAMPLES_SIGNATURE](
      **{names.EXAMPLES_INPUT: tf.constant(serialized)})[
          names.PROBABILITY_OUTPUT].numpy()
  assert external[(overall, layout.CANDIDATE, 'mean_prediction')] == (
      pytest.approx(float(probabilities.mean()), abs=1e-5))
  for folder in (uri, external_uri):
    assert results.load_plots(folder)[overall]['confusion_matrices']
    assert tfma.load_validation_result(folder).validation_ok
  # The external run writes no blessing of its own anywhere in the outputs.
  assert not any(name in (tfx_constants.BLESSED_FILE_NAME,
                          tfx_constants.NOT_BLESSED_FILE_NAME)
                 for _, _, files in os.walk(uri) for name in files)


def test_every_check_names_its_cohort_and_both_pass(passing):
  uri, blessing, decision = passing
  assert set(decision) == DECISION_KEYS | {'cohorts'}
  assert decision['blessed'] is True and _blessed_on_disk(blessing)
  assert decision['threshold'] == THRESHOLD
  assert decision['architecture'] == 'baseline_cnn'
  assert decision['baseline'] == {'version': '7', 'path': '/serving/7'}
  assert [c['cohort'] for c in decision['checks']] == (
      [layout.COHORT_INTERNAL] * 3 + [layout.COHORT_EXTERNAL] * 3)
  external_metrics = results.load_metrics(
      os.path.join(uri, layout.EXTERNAL_EVALUATION_DIR))
  for cohort in (layout.COHORT_INTERNAL, layout.COHORT_EXTERNAL):
    found = _checks(decision, cohort)
    assert list(found) == GATED and all(c['passed'] for c in found.values())
    # Compared with the deployed model on the same cohort (the same model).
    change = found[('auc', 'change')]
    assert change['baseline_value'] == change['value']
    assert change['bound'] == -PASSING.max_auc_drop
  assert _checks(decision, layout.COHORT_EXTERNAL)[('auc', 'value')][
      'value'] == external_metrics[(layout.OVERALL, layout.CANDIDATE, 'auc')]
  assert decision['cohorts'] == {
      layout.COHORT_INTERNAL: {
          'present': True, 'blessed': True, 'examples': sum(INTERNAL),
          'splits': ['test'], 'evaluation': '.'},
      layout.COHORT_EXTERNAL: {
          'present': True, 'blessed': True, 'examples': sum(EXTERNAL),
          'splits': [names.EXTERNAL_SPLIT],
          'evaluation': layout.EXTERNAL_EVALUATION_DIR}}


def test_a_failing_external_gate_refuses_the_model(external_fails):
  uri, blessing, decision = external_fails
  assert decision['blessed'] is False
  assert _blessed_on_disk(blessing) is False  # what the Pusher reads
  assert tfma.load_validation_result(uri).validation_ok  # internal passed
  assert not tfma.load_validation_result(
      os.path.join(uri, layout.EXTERNAL_EVALUATION_DIR)).validation_ok
  internal = _checks(decision, layout.COHORT_INTERNAL)
  assert all(c['passed'] for c in internal.values())
  external = _checks(decision, layout.COHORT_EXTERNAL)
  assert [k for k, c in external.items() if not c['passed']] == [
      ('auc', 'value')]
  assert external[('auc', 'value')]['bound'] == 1.01
  assert 'nothing deployed' in external[('auc', 'change')]['note']
  assert decision['baseline'] is None
  assert {k: v['blessed'] for k, v in decision['cohorts'].items()} == {
      layout.COHORT_INTERNAL: True, layout.COHORT_EXTERNAL: False}


@pytest.mark.parametrize('cohort', ['not wired', 'empty'])
def test_without_an_external_cohort_it_behaves_as_before(data, cohort):
  external = None
  if cohort == 'empty':
    external = standard_artifacts.Examples()
    external.uri = str(data['root'] / 'EmptyExternal')
    external.split_names = artifact_utils.encode_split_names([])
    external.set_int_custom_property(layout.COHORT_PRESENT, 0)
  uri, blessing, decision = _run(data, cohort.replace(' ', '_'),
                                 external=external)
  assert not os.path.exists(os.path.join(uri, layout.EXTERNAL_EVALUATION_DIR))
  assert set(decision) == DECISION_KEYS | {'cohorts'}
  assert decision['blessed'] is True and _blessed_on_disk(blessing)
  assert decision['blessed'] == results.validation_ok(uri)
  assert list(_checks(decision, layout.COHORT_INTERNAL)) == GATED
  assert len(decision['checks']) == len(GATED)
  absent = decision['cohorts'][layout.COHORT_EXTERNAL]
  assert absent['present'] is False and absent['blessed'] is None
  assert 'no external cohort' in absent['note']
  assert decision['cohorts'][layout.COHORT_INTERNAL]['examples'] == sum(
      INTERNAL)
