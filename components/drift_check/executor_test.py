"""DriftCheck on statistics of real images, computed as StatisticsGen does
(TFDV with the curated schema), against a baseline laid out as the Pusher
and DeployedModel leave it."""
import json
import os
import pathlib

import pytest
from tfx.types import artifact_utils
from tfx.types import standard_artifacts
from tfx.utils import path_utils

from components.drift_check import comparison
from components.drift_check import executor
from contract import layout
from contract import names
from contract import settings as config
from testing import statistics
from testing import support

_PER_CLASS = 20  # images of each class per data set (enough for histograms)


def _statistics(root, out, offset=0, count=_PER_CLASS):
  return statistics.example_statistics(root, out, offset, count)


def _schema():
  return statistics.schema()


def _statistics_artifact(stats, folder: pathlib.Path):
  artifact = standard_artifacts.ExampleStatistics()
  artifact.uri = str(folder)
  artifact.split_names = artifact_utils.encode_split_names(
      [executor.COMPARED_SPLIT])
  split = pathlib.Path(artifact_utils.get_split_uri(
      [artifact], executor.COMPARED_SPLIT))
  split.mkdir(parents=True)
  (split / 'FeatureStats.pb').write_bytes(stats.SerializeToString())
  return artifact


def _deployed(folder: pathlib.Path, stats=None, found=True):
  """DeployedModel's output; its copy of the version holds `stats`."""
  model = standard_artifacts.Model()
  model.uri = str(folder)
  model.set_int_custom_property(layout.DEPLOYED_FOUND, int(found))
  if found:
    model.set_string_custom_property(layout.DEPLOYED_VERSION, '17')
    served = pathlib.Path(path_utils.serving_model_path(model.uri))
    (served / 'assets.extra').mkdir(parents=True)
    if stats is not None:
      (served / layout.TRAINING_STATISTICS_FILE).write_bytes(
          stats.SerializeToString())
  return model


def _schema_artifact(folder: pathlib.Path):
  artifact = standard_artifacts.Schema()
  artifact.uri = str(folder)
  folder.mkdir(parents=True)
  (folder / 'schema.pbtxt').write_text(
      pathlib.Path(config.SCHEMA_PATH).read_text())
  return artifact


def _run(tmp_path, current, baseline_model, on_drift='warn'):
  output = standard_artifacts.ExampleAnomalies()
  output.uri = str(tmp_path / 'drift')
  executor.Executor().Do(
      {'statistics': [_statistics_artifact(current, tmp_path / 'stats')],
       'schema': [_schema_artifact(tmp_path / 'schema')],
       'baseline_model': [baseline_model]},
      {'drift': [output]}, {'on_drift': on_drift})
  return output


@pytest.fixture(scope='module')
def kermany_224_stats(tmp_path_factory):
  root = support.require_shared_data('kermany-224')
  return _statistics(root, tmp_path_factory.mktemp('k224') / 'stats')


@pytest.fixture(scope='module')
def originals_stats(tmp_path_factory):
  root = support.require_shared_data('kermany-original-sample')
  return _statistics(root, tmp_path_factory.mktemp('orig') / 'stats')


def test_originals_against_a_kermany_224_baseline_drift_in_size(
    tmp_path, kermany_224_stats, originals_stats):
  output = _run(tmp_path, originals_stats,
                _deployed(tmp_path / 'deployed', kermany_224_stats))
  report = executor.read_report(output)
  assert report['status'] == layout.DRIFT_FOUND, report
  assert report['baseline_version'] == '17'
  assert {names.HEIGHT_KEY, names.WIDTH_KEY} <= set(report['drifted'])
  rows = {row['feature']: row for row in report['features']}
  # 224 px against 400-2,900 px: the histograms do not overlap at all.
  assert rows[names.HEIGHT_KEY]['value'] > 0.9, rows
  assert rows[names.HEIGHT_KEY]['measure'] == 'Jensen-Shannon divergence'
  # kermany-224 is 3-channel, the originals mostly 1-channel.
  assert rows[names.CHANNELS_KEY]['drifted'], rows
  assert rows[names.CHANNELS_KEY]['measure'] == 'L-infinity'
  # Both sets take 20 images of each class: the label share did not move.
  assert rows[names.LABEL_KEY]['value'] == 0 and not rows[
      names.LABEL_KEY]['drifted']
  assert set(rows) == set(comparison.watched(_schema()))


def test_the_same_data_twice_has_no_drift(tmp_path, kermany_224_stats):
  output = _run(tmp_path, kermany_224_stats,
                _deployed(tmp_path / 'deployed', kermany_224_stats),
                on_drift='stop')
  report = executor.read_report(output)
  assert report['status'] == layout.DRIFT_NONE, report
  assert report['drifted'] == []
  assert report['features'] and all(
      row['value'] == 0 for row in report['features']), report['features']


def test_other_images_of_the_same_cohort_stay_below_the_thresholds(
    tmp_path):
  # 100 images a class: with 20, two samples of one cohort differ in mean
  # intensity by a Jensen-Shannon divergence of 0.13 (histogram noise); a
  # train split of a real run holds hundreds to thousands.
  root = support.require_shared_data('kermany-224')
  one = _statistics(root, tmp_path / 'one', count=100)
  other = _statistics(root, tmp_path / 'other', offset=100, count=100)
  output = _run(tmp_path, other, _deployed(tmp_path / 'deployed', one))
  report = executor.read_report(output)
  assert report['status'] == layout.DRIFT_NONE, report['features']
  rows = {row['feature']: row for row in report['features']}
  assert rows[names.MEAN_INTENSITY_KEY]['value'] > 0  # really measured


def test_on_drift_stop_raises_after_writing_the_report(
    tmp_path, kermany_224_stats, originals_stats):
  with pytest.raises(executor.DriftError, match='height') as raised:
    _run(tmp_path, originals_stats,
         _deployed(tmp_path / 'deployed', kermany_224_stats),
         on_drift='stop')
  assert 'stops before training' in str(raised.value)
  with open(tmp_path / 'drift' / layout.DRIFT_REPORT_FILE) as f:
    assert json.load(f)['status'] == layout.DRIFT_FOUND


def test_nothing_deployed_is_not_compared_and_never_stops(
    tmp_path, originals_stats):
  output = _run(tmp_path, originals_stats,
                _deployed(tmp_path / 'deployed', found=False),
                on_drift='stop')
  report = executor.read_report(output)
  assert report['status'] == layout.DRIFT_NO_BASELINE
  assert report['features'] == [] and report['baseline_version'] is None


def test_a_version_without_statistics_is_said_not_compared(
    tmp_path, originals_stats):
  output = _run(tmp_path, originals_stats, _deployed(tmp_path / 'deployed'),
                on_drift='stop')
  report = executor.read_report(output)
  assert report['status'] == layout.DRIFT_BASELINE_WITHOUT_STATISTICS
  assert report['baseline_version'] == '17'


def test_a_feature_the_baseline_lacks_is_not_compared(kermany_224_stats):
  baseline = type(kermany_224_stats)()
  baseline.CopyFrom(kermany_224_stats)
  features = baseline.datasets[0].features
  keep = [f for f in features if f.path.step != [names.MEAN_INTENSITY_KEY]]
  del features[:]
  features.extend(keep)
  rows = {row['feature']: row for row in comparison.compare(
      kermany_224_stats, baseline, _schema())}
  assert rows[names.MEAN_INTENSITY_KEY]['value'] is None
  assert not rows[names.MEAN_INTENSITY_KEY]['drifted']
  assert rows[names.HEIGHT_KEY]['value'] == 0


def test_the_schema_knows_every_file_format_ingestion_writes():
  schema = _schema()
  (domain,) = [d for d in schema.string_domain
               if d.name == names.FILE_FORMAT_KEY]
  assert tuple(domain.value) == names.FILE_FORMATS
