"""Tests of the run report: figures, page, reading layer, folders, browser.

Nothing here needs a pipeline run: the figures and the page are fed
constructed data, and the executor reads hand-written artifact folders in
tmp_path with TFMA's readers monkeypatched (one test writes a real TFMA plots
file to check the plots are read in the format TFMA writes). A run with an
external cohort (`_external_data`, `_add_external`) gets its own section,
warning, figures and data; without one the page is byte for byte as before.
"""
import html.parser
import json
import os
import pathlib
import time

import pytest
import tensorflow as tf
from tfx import types
from tfx.types import standard_artifacts

from components.evaluator import results
from components.run_report import component
from components.run_report import drawing
from components.run_report import evaluation
from components.run_report import executor
from components.run_report import figures
from components.run_report import page
from components.run_report import reading
from components.run_report import run as run_lib
from components.run_report import view
from components.run_report import view_ingestion
from contract import layout
from contract import names as constants
from testing import browser

THRESHOLD = 0.3125
BASELINE_VERSION = '1700000000'
BASELINE_PATH = '/srv/serving/pneumonia/1700000000'
PUSHED_VERSION = '1700009999'
PUSH_DESTINATION = '/srv/serving/pneumonia/1700009999'


# --- constructed data ---------------------------------------------------------


def _scores():
  """(label, score) of a small, imperfect test split."""
  positives = [0.95, 0.9, 0.85, 0.8, 0.7, 0.6, 0.45, 0.35, 0.32, 0.2]
  negatives = [0.5, 0.4, 0.3, 0.25, 0.2, 0.15, 0.1, 0.08, 0.05, 0.02]
  return [(1, s) for s in positives] + [(0, s) for s in negatives]


def _matrix(pairs, threshold):
  m = {'threshold': threshold, 'tp': 0.0, 'fp': 0.0, 'tn': 0.0, 'fn': 0.0}
  for label, score in pairs:
    predicted = score >= threshold
    key = ('tp' if predicted else 'fn') if label else (
        'fp' if predicted else 'tn')
    m[key] += 1.0
  return m


def _curve(pairs):
  return [_matrix(pairs, t / 1000) for t in range(-1, 1001)]


def _buckets(pairs):
  buckets = []
  for i in range(1000):
    lower, upper = i / 1000, (i + 1) / 1000
    inside = [(l, s) for l, s in pairs if lower <= s < upper]
    buckets.append({'lower': lower, 'upper': upper,
                    'weight': float(len(inside)),
                    'labels': float(sum(l for l, _ in inside)),
                    'predictions': float(sum(s for _, s in inside))})
  return buckets


def _slice_metrics(pairs, model, name, out):
  m = _matrix(pairs, THRESHOLD)
  r = figures.rates(m)
  nan = float('nan')
  out[(name, model, 'example_count')] = float(len(pairs))
  out[(name, model, 'confusion_matrix')] = [m]
  out[(name, model, 'recall')] = (r['sensitivity'] if r['sensitivity']
                                  is not None else nan)
  out[(name, model, 'specificity')] = (r['specificity'] if r['specificity']
                                       is not None else nan)
  out[(name, model, 'binary_accuracy')] = (m['tp'] + m['tn']) / len(pairs)
  predicted = m['tp'] + m['fp']
  out[(name, model, 'precision')] = m['tp'] / predicted if predicted else nan


def _metrics(baseline=True, pairs=None, aucs=None):
  """TFMA's metrics of the test split (or of `pairs`); aucs: {model: (AUC,
  PR-AUC)}."""
  pairs = pairs or _scores()
  aucs = aucs or {'candidate': (0.91, 0.93), 'baseline': (0.88, 0.9)}
  positives = [p for p in pairs if p[0]]
  subtypes = {'bacteria': [p for p in positives if p[1] >= 0.4],
              'virus': [p for p in positives if p[1] < 0.4],
              'normal': [p for p in pairs if not p[0]]}
  out = {}
  models = [('candidate', pairs)]
  if baseline:
    models.append(('baseline', [(l, min(1.0, s * 0.9)) for l, s in pairs]))
  for model, scored in models:
    _slice_metrics(scored, model, 'overall', out)
    _slice_metrics(scored, model, 'channels=1', out)
    by_score = dict(zip(pairs, scored))
    for subtype, members in subtypes.items():
      _slice_metrics([by_score[p] for p in members], model,
                     f'subtype={subtype}', out)
    out[('overall', model, 'auc')], out[('overall', model, 'pr_auc')] = (
        aucs[model])
  return out


def _plots(model='candidate', pairs=None):
  pairs = pairs or _scores()
  if model == 'baseline':
    pairs = [(l, min(1.0, s * 0.9)) for l, s in pairs]
  return {'overall': {'confusion_matrices': _curve(pairs),
                      'calibration': _buckets(pairs)}}


def _history(epochs=6, best=4):
  rows = []
  for epoch in range(1, epochs + 1):
    rows.append({'epoch': epoch, 'phase': 1 if epoch <= 3 else 2,
                 'loss': 0.7 - 0.05 * epoch, 'auc': 0.6 + 0.05 * epoch,
                 'val_loss': 0.65 - 0.04 * min(epoch, best),
                 'val_auc': 0.7 + 0.04 * min(epoch, best) - 0.01 * epoch
                            * (epoch > best),
                 'accuracy': 0.7, 'val_accuracy': 0.7, 'seconds': 1.0,
                 'images_per_second': 100.0})
  return rows


def _comparison():
  return [
      {'architecture': 'baseline_cnn', 'selected': False, 'val_auc': 0.84,
       'val_accuracy': 0.78, 'val_loss': 0.5, 'train_auc': 0.88,
       'best_epoch': 5, 'epochs_run': 6, 'parameters': 120000,
       'stopped_by': 'race', 'race_leader': 'resnet50',
       'seconds': 60.0, 'images_per_second': 100.0},
      {'architecture': 'resnet50', 'selected': True, 'val_auc': 0.86,
       'val_accuracy': 0.8, 'val_loss': 0.45, 'train_auc': 0.9,
       'best_epoch': 4, 'epochs_run': 6, 'parameters': 23500000,
       'seconds': 600.0, 'images_per_second': 40.0}]


def _ingestion(rejected=3, duplicates=2):
  return {
      'counts': {
          'all': {'NORMAL': 100, 'PNEUMONIA': 110, 'total': 210},
          'train': {'NORMAL': 70, 'PNEUMONIA': 77, 'total': 147},
          'eval': {'NORMAL': 20, 'PNEUMONIA': 22, 'total': 42},
          'test': {'NORMAL': 10, 'PNEUMONIA': 11, 'total': 21}},
      'patients': {'train': 120, 'eval': 35, 'test': 18},
      'duplicates': [{'path': f'PNEUMONIA/copy-{i}.jpeg',
                      'duplicate_of': f'PNEUMONIA/person{i}_bacteria_1.jpeg'}
                     for i in range(duplicates)],
      'rejected': [{'path': f'NORMAL/broken <{i}>.jpeg',
                    'reason': 'not a decodable image: unknown format'}
                   for i in range(rejected)],
      'ignored': {'count': 2, 'paths': ['README.md', '__MACOSX/']}}


def _model_info():
  return {'architecture': 'resnet50', 'threshold': THRESHOLD,
          'operating_point': {'threshold': THRESHOLD,
                              'target_sensitivity': 0.95,
                              'sensitivity': 0.9545, 'specificity': 0.65,
                              'positives': 22, 'negatives': 20},
          'comparison': _comparison()}


def _decision(blessed=True, baseline=True):
  checks = [
      {'metric': 'auc', 'kind': 'value', 'bound': 0.8, 'value': 0.91,
       'passed': True},
      {'metric': 'recall', 'kind': 'value', 'bound': 0.8, 'value': 0.9,
       'passed': blessed}]
  if baseline:
    checks.insert(1, {'metric': 'auc', 'kind': 'change', 'bound': -0.01,
                      'value': 0.91, 'baseline_value': 0.88,
                      'difference': 0.03, 'passed': True})
  else:
    checks.insert(1, {'metric': 'auc', 'kind': 'change', 'bound': -0.01,
                      'value': 0.91, 'baseline_value': None, 'passed': True,
                      'note': 'nothing deployed: not compared'})
  return {'blessed': blessed, 'threshold': THRESHOLD,
          'architecture': 'resnet50',
          'baseline': ({'version': BASELINE_VERSION, 'path': BASELINE_PATH}
                       if baseline else None),
          'checks': checks}


def _data(blessed=True, baseline=True, **overrides):
  data = {
      'pipeline_name': 'pneumonia', 'run_id': '20240101-000000',
      'created': '2024-01-01 00:00:00 UTC',
      'inputs': {'examples': ['/x/examples/1']},
      'ingestion': _ingestion(),
      'histories': {'baseline_cnn': _history(6, 5),
                    'resnet50': _history(6, 4)},
      'comparison': _comparison(),
      'training_settings': {'profile': 'full', 'epochs': 6},
      'model_info': _model_info(),
      'decision': _decision(blessed, baseline),
      'blessed_artifact': blessed,
      'metrics': _metrics(baseline),
      'plots': _plots(),
      'baseline_plots': _plots('baseline') if baseline else None,
      'baseline': (run_lib.Deployed(True, BASELINE_VERSION, BASELINE_PATH)
                   if baseline else run_lib.Deployed(False)),
      'pushed': (run_lib.Pushed(True, PUSHED_VERSION, PUSH_DESTINATION)
                 if blessed else run_lib.Pushed(False)),
      'problems': [],
  }
  data.update(overrides)
  return run_lib.Run(**data)


# --- an external cohort -------------------------------------------------------

EXTERNAL_POSITIVES = [0.92, 0.88, 0.8, 0.74, 0.66, 0.55, 0.47, 0.4, 0.36, 0.33,
                      0.28, 0.12]  # 10 of 12 at or above THRESHOLD
EXTERNAL_ABOVE = [0.62, 0.51, 0.44, 0.38, 0.35, 0.34]  # NORMAL, >= THRESHOLD
EXTERNAL_BELOW = [0.29, 0.22, 0.18, 0.14, 0.11, 0.09, 0.07, 0.05, 0.04, 0.02]
EXTERNAL_BASELINE_AUC = 0.83
IN_MAIN = [{'path': f'PNEUMONIA/child <{i}>.jpeg', 'sha256': f'{i:02d}' * 32,
            'main_path': f'train/PNEUMONIA/person{i}_bacteria_1.jpeg'}
           for i in range(2)]


def _external_scores(false_positives=4):
  """(label, score) of another site's children: 12 PNEUMONIA, 10 NORMAL, of
  which `false_positives` score above the threshold (specificity
  1 - false_positives / 10; the internal test split's is 0.8)."""
  negatives = (EXTERNAL_ABOVE[:false_positives]
               + EXTERNAL_BELOW[:10 - false_positives])
  return [(1, s) for s in EXTERNAL_POSITIVES] + [(0, s) for s in negatives]


def _external_ingestion():
  counts = {'NORMAL': 10, 'PNEUMONIA': 12, 'total': 22}
  return {'counts': {'external': dict(counts), 'all': dict(counts)},
          'patients': {'external': 19},
          'duplicates': [{'path': 'NORMAL/scan-copy.jpeg',
                          'duplicate_of': 'NORMAL/scan.jpeg'}],
          'rejected': [{'path': 'NORMAL/odd <name>.png',
                        'reason': 'not a decodable image: truncated'}],
          'ignored': {'count': 1, 'paths': ['Thumbs.db']},
          layout.IN_MAIN_DATA: IN_MAIN, layout.COHORT_PRESENT: 1}


def _cohort_decision(external_auc, baseline=True, internal_blessed=True):
  """blessing_decision.json of a run with an external cohort (AUC >= 0.9
  and recall >= 0.8 there)."""
  decision = _decision(internal_blessed, baseline)
  for check in decision['checks']:
    check['cohort'] = layout.COHORT_INTERNAL
  external_blessed = external_auc >= 0.9
  decision['checks'] += [
      {'cohort': layout.COHORT_EXTERNAL, 'metric': 'auc', 'kind': 'value',
       'bound': 0.9, 'value': external_auc, 'passed': external_blessed},
      {'cohort': layout.COHORT_EXTERNAL, 'metric': 'recall', 'kind': 'value',
       'bound': 0.8, 'value': 10 / 12, 'passed': True}]
  decision['cohorts'] = {
      layout.COHORT_INTERNAL: {'present': True, 'blessed': internal_blessed,
                               'examples': 20},
      layout.COHORT_EXTERNAL: {'blessed': external_blessed, 'examples': 22}}
  decision['blessed'] = internal_blessed and external_blessed
  return decision


def _external_metrics(external_auc, false_positives, baseline=True):
  return _metrics(baseline, _external_scores(false_positives), {
      'candidate': (external_auc, external_auc + 0.01),
      'baseline': (EXTERNAL_BASELINE_AUC, 0.85)})


def _external_data(external_auc=0.85, false_positives=4, baseline=True,
                   **overrides):
  """A run whose external cohort is `external_auc` in AUC and has
  `false_positives` of its 10 NORMAL images above the threshold."""
  decision = _cohort_decision(external_auc, baseline)
  pairs = _external_scores(false_positives)
  fields = dict(
      decision=decision, blessed_artifact=decision['blessed'],
      pushed=(run_lib.Pushed(True, PUSHED_VERSION, PUSH_DESTINATION)
              if decision['blessed'] else run_lib.Pushed(False)),
      inputs={'examples': ['/x/examples/1'],
              'external_examples': ['/x/external_examples/1']},
      external_present=True, external_ingestion=_external_ingestion(),
      external_metrics=_external_metrics(external_auc, false_positives,
                                         baseline),
      external_plots=_plots('candidate', pairs),
      external_baseline_plots=_plots('baseline', pairs) if baseline else None)
  fields.update(overrides)
  return _data(blessed=True, baseline=baseline, **fields)


class _Tables(html.parser.HTMLParser):
  """Every <table> of a page: rows of cell texts."""

  def __init__(self):
    super().__init__()
    self.tables, self._cell = [], None

  def handle_starttag(self, tag, attrs):
    if tag == 'table':
      self.tables.append([])
    elif tag == 'tr' and self.tables:
      self.tables[-1].append([])
    elif tag in ('td', 'th'):
      self._cell = []

  def handle_endtag(self, tag):
    if tag in ('td', 'th') and self._cell is not None:
      self.tables[-1][-1].append(''.join(self._cell).strip())
      self._cell = None

  def handle_data(self, data):
    if self._cell is not None:
      self._cell.append(data)


def _tables(text):
  parser = _Tables()
  parser.feed(text)
  return parser.tables


def _html(data):
  """The page of `data` without its figures (the faster way to test text)."""
  return page.render(view.build(data), drawing.Drawn(
      training={name: None for name in data.histories or {}}))


def _section(text, start_id, end_id):
  return text[text.index(f'id="{start_id}"'):text.index(f'id="{end_id}"')]


class _Images(html.parser.HTMLParser):

  def __init__(self):
    super().__init__()
    self.sources = []
    self.external = []

  def handle_starttag(self, tag, attrs):
    attrs = dict(attrs)
    if tag == 'img':
      self.sources.append(attrs.get('src'))
    for name in ('src', 'href'):
      value = attrs.get(name) or ''
      if '://' in value or value.startswith('//'):
        self.external.append(value)
    if tag in ('script', 'link'):
      self.external.append(tag)


def _check_page(path):
  """The page's text; asserts it is self-contained with working images."""
  text = pathlib.Path(path).read_text(encoding='utf-8')
  parser = _Images()
  parser.feed(text)
  assert not parser.external, parser.external
  folder = os.path.dirname(path)
  for src in parser.sources:
    assert src and not os.path.isabs(src) and '://' not in src, src
    assert os.path.isfile(os.path.join(folder, src)), src
  return text, parser.sources


# --- figures ------------------------------------------------------------------


def test_each_figure_writes_a_png_or_none_without_data(tmp_path):
  folder = str(tmp_path)
  pairs = _scores()
  point = _matrix(pairs, THRESHOLD)
  names = [
      figures.training_curves(folder, 't.png', 'resnet50', _history(), 4),
      figures.roc_curve(folder, 'roc.png', _curve(pairs), point, 0.9,
                        _curve(pairs[::-1]), 0.8),
      figures.confusion_matrix(folder, 'cm.png', point),
      figures.subtype_rates(folder, 's.png', [
          {'slice': 'subtype=virus', 'metric': 'sensitivity', 'value': 0.5,
           'n': 4, 'baseline_value': float('nan')},
          {'slice': 'subtype=normal', 'metric': 'specificity',
           'value': None, 'n': 0}]),
      figures.calibration(folder, 'c.png', _buckets(pairs)),
      figures.ingestion_counts(folder, 'i.png', _ingestion()['counts']),
  ]
  assert names == ['t.png', 'roc.png', 'cm.png', 's.png', 'c.png', 'i.png']
  for name in names:
    with open(tmp_path / name, 'rb') as f:
      assert f.read(8) == b'\x89PNG\r\n\x1a\n'
    assert (tmp_path / name).stat().st_size < 300_000
  assert figures.training_curves(folder, 'x.png', 'a', []) is None
  assert figures.roc_curve(folder, 'x.png', None) is None
  # One class only: no ROC.
  assert figures.roc_curve(folder, 'x.png', _curve(pairs[:10])) is None
  assert figures.confusion_matrix(folder, 'x.png', None) is None
  assert figures.subtype_rates(folder, 'x.png', []) is None
  assert figures.calibration(folder, 'x.png', []) is None
  assert figures.ingestion_counts(folder, 'x.png', {}) is None
  assert not (tmp_path / 'x.png').exists()


def test_roc_points_and_calibration_bins():
  fpr, tpr = figures.roc_points(_curve(_scores()))
  assert fpr[0] == 0.0 and tpr[-1] == 1.0 and fpr == sorted(fpr)
  bins = figures.calibration_bins(_buckets(_scores()))
  assert sum(b['weight'] for b in bins) == 20
  for b in bins:
    assert b['lower'] <= b['mean_prediction'] < b['upper'] + 1e-9
  assert figures.best_epoch(_history(6, 4)) == 4


# --- the page -----------------------------------------------------------------


def test_blessed_report_shows_decision_metrics_and_data(tmp_path):
  path = page.write_report(_data(blessed=True, baseline=True), str(tmp_path))
  text, sources = _check_page(path)
  assert len(sources) >= 7  # 2 training + ROC, matrix, subtypes, calib, data
  assert 'BLESSED' in text and 'NOT BLESSED' not in text
  for check in _decision()['checks']:
    assert f"<b>{check['metric']}</b>" in text
  assert BASELINE_VERSION in text and BASELINE_PATH in text
  assert f'{THRESHOLD:.4f}' in text
  assert PUSHED_VERSION in text and PUSH_DESTINATION in text
  assert 'target sensitivity of 0.95' in text
  for label in ('AUC (ROC)', 'PR-AUC', 'accuracy', 'precision', 'recall',
                'specificity', 'examples', 'deployed model'):
    assert label in text
  for entry in _ingestion()['rejected']:
    assert html.escape(entry['path']) in text  # escaped, never raw HTML
  assert 'broken <0>' not in text
  assert 'Duplicates dropped: 2' in text
  assert 'class="selected"' in text  # the chosen architecture
  assert '<td>race: behind resnet50</td>' in text  # why baseline_cnn stopped
  assert 'Missing from this run' not in text


def test_not_blessed_report_names_the_failed_check_and_baseline(tmp_path):
  path = page.write_report(_data(blessed=False, baseline=True), str(tmp_path))
  text, _ = _check_page(path)
  assert 'NOT BLESSED' in text
  assert 'failed recall (value)' in text
  assert 'FAIL' in text
  assert BASELINE_VERSION in text and BASELINE_PATH in text
  assert 'not pushed; the served version is unchanged' in text
  assert f'version {BASELINE_VERSION} keeps serving' in text


def test_first_model_is_judged_on_values_alone(tmp_path):
  path = page.write_report(_data(blessed=True, baseline=False), str(tmp_path))
  text, _ = _check_page(path)
  assert 'nothing deployed: judged on value thresholds alone' in text
  assert 'deployed specificity' not in text


def test_long_lists_are_truncated_with_a_count(tmp_path):
  data = _data(ingestion=_ingestion(rejected=view_ingestion.MAX_LISTED + 7,
                                    duplicates=view_ingestion.MAX_LISTED + 1))
  text, _ = _check_page(page.write_report(data, str(tmp_path)))
  assert html.escape(f'broken <{view_ingestion.MAX_LISTED - 1}>') in text
  assert html.escape(f'broken <{view_ingestion.MAX_LISTED}>') not in text
  assert '7 more rejected files' in text
  assert '1 more duplicates' in text
  assert f'Files rejected: {view_ingestion.MAX_LISTED + 7}' in text


def test_missing_metrics_and_plots_are_said_not_fatal(tmp_path):
  metrics = {k: v for k, v in _metrics().items()
             if k[2] not in ('auc', 'confusion_matrix')}
  data = _data(metrics=metrics, plots=None, baseline_plots=None,
               histories={'resnet50': []})
  text, sources = _check_page(page.write_report(data, str(tmp_path)))
  assert '<i>missing</i>' in text  # AUC of the candidate
  assert 'No ROC curve figure' in text
  assert 'TFMA plots (ROC and calibration)' in text
  assert 'roc.png' not in sources and 'calibration.png' not in sources


def test_a_failing_figure_is_reported_not_raised(tmp_path, monkeypatch):
  def fail(*args, **kwargs):
    raise RuntimeError('no fonts today')
  monkeypatch.setattr(figures, 'calibration', fail)
  text, _ = _check_page(page.write_report(_data(), str(tmp_path)))
  assert 'the calibration figure could not be drawn' in text
  assert 'no fonts today' in text


# --- the executor: reading artifacts, folders, latest -------------------------


def _write_json(path, value):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, 'w') as f:
    json.dump(value, f)


def _artifact(cls, uri, **properties):
  artifact = cls()
  artifact.uri = str(uri)
  os.makedirs(artifact.uri, exist_ok=True)
  for key, value in properties.items():
    if isinstance(value, int):
      artifact.set_int_custom_property(key, value)
    else:
      artifact.set_string_custom_property(key, value)
  return [artifact]


def _inputs(root, stop_after='push', blessed=False, baseline=True):
  """Artifact folders as the pipeline writes them, in `root`."""
  root = pathlib.Path(root)
  inputs = {}
  inputs['examples'] = _artifact(standard_artifacts.Examples,
                                 root / 'examples')
  _write_json(str(root / 'examples' / 'ingestion_report.json'), _ingestion())
  inputs['model_run'] = _artifact(standard_artifacts.ModelRun,
                                  root / 'model_run')
  _write_json(str(root / 'model_run' / 'comparison.json'), _comparison())
  _write_json(str(root / 'model_run' / 'training_settings.json'),
              {'profile': 'full', 'epochs': 6, 'shuffle_labels': False})
  for row in _comparison():
    _write_json(str(root / 'model_run' / row['architecture'] /
                    'history.json'), _history(6, row['best_epoch']))
  inputs['model'] = _artifact(standard_artifacts.Model, root / 'model')
  _write_json(str(root / 'model' / 'Format-Serving' / 'assets.extra' /
                  'model_info.json'), _model_info())
  if stop_after == 'train':
    return inputs
  inputs['evaluation'] = _artifact(standard_artifacts.ModelEvaluation,
                                   root / 'evaluation')
  _write_json(str(root / 'evaluation' / 'blessing_decision.json'),
              _decision(blessed, baseline))
  inputs['blessing'] = _artifact(standard_artifacts.ModelBlessing,
                                 root / 'blessing', blessed=int(blessed))
  if baseline:
    inputs['baseline_model'] = _artifact(
        standard_artifacts.Model, root / 'baseline',
        deployed_model_found=1, deployed_version=BASELINE_VERSION,
        deployed_path=BASELINE_PATH)
  else:
    inputs['baseline_model'] = _artifact(
        standard_artifacts.Model, root / 'baseline', deployed_model_found=0)
  if stop_after == 'push':
    properties = ({'pushed': 1, 'pushed_version': PUSHED_VERSION,
                   'pushed_destination': PUSH_DESTINATION} if blessed
                  else {'pushed': 0})
    inputs['pushed_model'] = _artifact(standard_artifacts.PushedModel,
                                       root / 'pushed', **properties)
  return inputs


@pytest.fixture
def fake_tfma(monkeypatch):
  """results.load_metrics/load_plots answering from constructed data."""
  calls = []

  def load_metrics(uri):
    calls.append(('metrics', uri))
    return _metrics(baseline=True)

  def load_plots(uri, model='candidate'):
    calls.append(('plots', uri, model))
    return _plots(model)

  monkeypatch.setattr(results, 'load_metrics', load_metrics)
  monkeypatch.setattr(results, 'load_plots', load_plots)
  return calls


def _run(inputs, reports_dir):
  executor.Executor().Do(inputs, {}, {
      executor.REPORTS_DIR_KEY: str(reports_dir),
      executor.PIPELINE_NAME_KEY: 'pneumonia'})
  latest = os.path.join(str(reports_dir), layout.LATEST_REPORT)
  assert os.path.islink(latest)
  target = os.readlink(latest)
  assert not os.path.isabs(target) and '/' not in target, target
  return os.path.join(str(reports_dir), target, layout.REPORT_FILE)


def test_executor_reads_the_artifacts_and_points_latest(tmp_path, fake_tfma,
                                                        caplog):
  inputs = _inputs(tmp_path / 'artifacts', blessed=False, baseline=True)
  reports = tmp_path / 'output' / 'reports'
  with caplog.at_level('INFO'):
    path = _run(inputs, reports)
  text, sources = _check_page(path)
  assert len(sources) >= 7
  assert 'NOT BLESSED' in text
  for check in _decision(False)['checks']:
    assert f"<b>{check['metric']}</b>" in text
  assert BASELINE_VERSION in text and BASELINE_PATH in text
  assert f'{THRESHOLD:.4f}' in text
  assert 'not pushed; the served version is unchanged' in text
  for entry in _ingestion()['rejected']:
    assert html.escape(entry['path']) in text
  assert 'training_resnet50.png' in sources
  assert 'Missing from this run' not in text
  uri = str(tmp_path / 'artifacts' / 'evaluation')
  assert ('plots', uri, 'baseline') in fake_tfma
  assert any(f'Run report: {path}' in r.getMessage() for r in caplog.records)


def test_blessed_and_pushed_run(tmp_path, fake_tfma):
  path = _run(_inputs(tmp_path / 'a', blessed=True, baseline=False),
              tmp_path / 'reports')
  text, _ = _check_page(path)
  assert 'BLESSED' in text and 'NOT BLESSED' not in text
  assert PUSHED_VERSION in text and PUSH_DESTINATION in text
  assert 'nothing deployed: judged on value thresholds alone' in text


def test_same_second_gets_a_new_folder_and_latest_moves(tmp_path, fake_tfma,
                                                        monkeypatch):
  monkeypatch.setattr(executor, '_clock', lambda: 1700000000.0)
  inputs = _inputs(tmp_path / 'a')
  reports = tmp_path / 'reports'
  first = _run(inputs, reports)
  first_html = pathlib.Path(first).read_text()
  second = _run(inputs, reports)
  third = _run(inputs, reports)
  run_id = time.strftime('%Y%m%d-%H%M%S', time.gmtime(1700000000))
  folders = [os.path.basename(os.path.dirname(p))
             for p in (first, second, third)]
  assert folders == [run_id, f'{run_id}-1', f'{run_id}-2']
  assert os.readlink(reports / 'latest') == f'{run_id}-2'
  assert pathlib.Path(first).read_text() == first_html  # never overwritten
  assert sorted(os.listdir(reports)) == sorted(folders + ['latest'])


def test_latest_replaces_an_older_link_atomically(tmp_path):
  reports = tmp_path / 'reports'
  for name in ('20240101-000000', '20240101-000001'):
    assert executor.claim_folder(str(reports), name) == name
    executor.point_latest(str(reports), name)
  assert os.readlink(reports / 'latest') == '20240101-000001'
  assert not [n for n in os.listdir(reports) if n.startswith('.')]


def test_partial_run_without_evaluation_still_writes_a_report(tmp_path,
                                                              fake_tfma):
  path = _run(_inputs(tmp_path / 'a', stop_after='train'),
              tmp_path / 'reports')
  text, sources = _check_page(path)
  assert 'NO DECISION' in text and 'BLESSED' not in text
  assert 'Missing from this run' in text
  assert 'the run stopped before evaluation' in text
  assert 'did not reach the push stage' in text
  assert 'No test metrics' in text
  assert 'training_resnet50.png' in sources and 'ingestion.png' in sources
  assert not fake_tfma  # nothing asked of TFMA


def test_evaluate_only_run_says_nothing_was_pushed(tmp_path, fake_tfma):
  path = _run(_inputs(tmp_path / 'a', stop_after='evaluate', blessed=True),
              tmp_path / 'reports')
  text, _ = _check_page(path)
  assert 'BLESSED' in text and 'NOT BLESSED' not in text
  assert 'did not reach the push stage' in text


def test_unreadable_inputs_are_listed(tmp_path, monkeypatch):
  def broken(uri, *args):
    raise OSError(f'cannot open {uri}')
  monkeypatch.setattr(results, 'load_metrics', broken)
  monkeypatch.setattr(results, 'load_plots', broken)
  inputs = _inputs(tmp_path / 'a', blessed=True)
  os.remove(tmp_path / 'a' / 'evaluation' / 'blessing_decision.json')
  os.remove(tmp_path / 'a' / 'examples' / 'ingestion_report.json')
  with open(tmp_path / 'a' / 'model_run' / 'comparison.json', 'w') as f:
    f.write('{not json')
  path = _run(inputs, tmp_path / 'reports')
  text, _ = _check_page(path)
  assert 'blessing_decision.json not found' in text
  assert 'ingestion_report.json not found' in text
  assert 'TFMA metrics could not be read' in text
  # The verdict still comes from the ModelBlessing artifact.
  assert 'BLESSED' in text and 'NOT BLESSED' not in text
  assert 'verdict comes from the ModelBlessing artifact' in text
  # The comparison falls back to the one stored in the model.
  assert 'class="selected"' in text


def test_plots_are_read_as_tfma_writes_them(tmp_path):
  """TFMA stores the confusion matrices and the calibration buckets of a
  slice in one PlotData; both must come back."""
  from tensorflow_model_analysis.proto import metrics_for_slice_pb2  # pylint: disable=g-import-not-at-top
  plots = metrics_for_slice_pb2.PlotsForSlice()
  for model in ('candidate', 'baseline'):
    entry = plots.plot_keys_and_values.add()
    entry.key.model_name = model
    for m in _curve(_scores()):
      matrix = entry.value.confusion_matrix_at_thresholds.matrices.add()
      matrix.threshold = m['threshold']
      matrix.true_positives, matrix.false_positives = m['tp'], m['fp']
      matrix.true_negatives, matrix.false_negatives = m['tn'], m['fn']
    for b in _buckets(_scores()):
      bucket = entry.value.calibration_histogram_buckets.buckets.add()
      bucket.lower_threshold_inclusive = b['lower']
      bucket.upper_threshold_exclusive = b['upper']
      bucket.num_weighted_examples.value = b['weight']
      bucket.total_weighted_label.value = b['labels']
      bucket.total_weighted_refined_prediction.value = b['predictions']
  with tf.io.TFRecordWriter(
      str(tmp_path / 'plots-00000-of-00001.tfrecord')) as writer:
    writer.write(plots.SerializeToString())
  read = results.load_plots(str(tmp_path), 'candidate')
  assert set(read) == {'overall'}
  assert len(read['overall']['confusion_matrices']) == 1002
  assert read['overall']['confusion_matrices'][500]['tp'] == _matrix(
      _scores(), 0.499)['tp']
  assert sum(b['weight'] for b in read['overall']['calibration']) == 20


def test_a_failing_page_still_leaves_a_report(tmp_path, fake_tfma,
                                              monkeypatch):
  def fail(data, folder):
    raise KeyError('surprise')
  monkeypatch.setattr(page, 'write_report', fail)
  path = _run(_inputs(tmp_path / 'a'), tmp_path / 'reports')
  text = pathlib.Path(path).read_text()
  assert 'The report could not be built' in text and 'surprise' in text


# --- an external cohort: the page -------------------------------------------


def test_external_cohort_table_compares_every_overall_metric():
  text = _html(_external_data(0.85, false_positives=4))
  assert 'href="#external"' in text
  tables = _tables(_section(text, 'external', 'slices'))
  assert len(tables) == 1
  header, subheader, *rows = tables[0]
  assert header == ['metric', 'candidate', 'deployed model']
  assert subheader == ['internal', 'external', 'difference'] * 2
  by_label = {row[0]: row[1:] for row in rows}
  assert list(by_label) == ['AUC (ROC)', 'PR-AUC', 'accuracy', 'precision',
                            'recall (sensitivity)', 'specificity', 'examples']
  # candidate internal, external, difference; deployed internal, external,
  # difference (external - internal).
  assert by_label['AUC (ROC)'] == ['0.9100', '0.8500', '-0.0600', '0.8800',
                                   f'{EXTERNAL_BASELINE_AUC:.4f}', '-0.0500']
  assert by_label['specificity'][:3] == ['0.8000', '0.6000', '-0.2000']
  assert by_label['recall (sensitivity)'][:3] == ['0.9000', '0.8333',
                                                  '-0.0667']
  assert by_label['examples'] == ['20', '22', '+2', '20', '22', '+2']
  # The internal test split's own table is unchanged by the cohort.
  test_rows = _tables(_section(text, 'test', 'external'))[0]
  assert test_rows[0] == ['metric', 'candidate', 'deployed model',
                          'difference']


def test_external_cohort_without_a_deployed_model():
  text = _html(_external_data(0.85, baseline=False))
  header, subheader, *rows = _tables(_section(text, 'external', 'slices'))[0]
  assert header == ['metric', 'candidate']
  assert subheader == ['internal', 'external', 'difference']
  assert rows[0] == ['AUC (ROC)', '0.9100', '0.8500', '-0.0600']


def test_the_warning_states_both_numbers_and_the_gap():
  text = _html(_external_data(0.85, false_positives=4))
  warning = text[text.index('class="warning"'):]
  warning = warning[:warning.index('</div>')]
  assert text.index('class="warning"') < text.index('id="decision"')
  assert text.index('class="verdict') < text.index('class="warning"')
  assert ('<b>AUC</b>: external 0.8500 vs internal 0.9100, 0.0600 lower '
          f'(more than the {evaluation.EXTERNAL_AUC_MARGIN:.2f} allowed'
          in warning)
  assert ('<b>specificity</b>: external 0.6000 vs internal 0.8000, 0.2000 '
          f'lower (more than the {evaluation.EXTERNAL_SPECIFICITY_MARGIN:.2f}'
          in warning)
  assert f'threshold {THRESHOLD:.4f}' in warning


@pytest.mark.parametrize('external_auc, false_positives, warned', [
    (0.91, 2, []),  # as good as internal
    (0.89, 2, []),  # exactly the AUC margin below: not more than it
    (0.889, 2, ['AUC']),
    (0.95, 3, ['specificity']),  # specificity 0.7 vs 0.8
    (0.85, 4, ['AUC', 'specificity']),
])
def test_the_warning_appears_only_beyond_the_margins(
    external_auc, false_positives, warned):
  text = _html(_external_data(external_auc, false_positives))
  shown = [name for name in ('AUC', 'specificity')
           if f'<li><b>{name}</b>: external' in text]
  assert shown == warned
  assert ('class="warning"' in text) == bool(warned)
  assert 'id="external"' in text  # the comparison is there either way
  if not warned:
    assert 'neither is' in text


def test_cohort_gap_margins():
  assert evaluation.EXTERNAL_AUC_MARGIN == 0.02
  assert evaluation.EXTERNAL_SPECIFICITY_MARGIN == 0.05
  gap = evaluation.CohortGap('AUC', 0.91, 0.89, 0.02)
  assert gap.gap == pytest.approx(0.02) and not gap.exceeded
  assert evaluation.CohortGap('AUC', 0.91, 0.8899, 0.02).exceeded
  assert not evaluation.CohortGap('AUC', 0.91, None, 0.02).exceeded
  assert not evaluation.CohortGap('x', 0.8, float('nan'), 0.05).exceeded
  assert not evaluation.CohortGap('x', 0.8, 0.9, 0.05).exceeded  # better


def test_external_figures_per_cohort(tmp_path):
  path = page.write_report(_external_data(), str(tmp_path))
  text, sources = _check_page(path)
  external = _section(text, 'external', 'slices')
  for name in ('roc_cohorts.png', 'confusion_matrix.png',
               'confusion_matrix_external.png'):
    assert f'src="{name}"' in external, name
    assert name in sources
    with open(tmp_path / name, 'rb') as f:
      assert f.read(8) == b'\x89PNG\r\n\x1a\n'
  # The internal figures stay as they are beside the new ones.
  assert 'roc.png' in sources
  assert 'Missing from this run' not in text


def test_combined_roc_needs_a_curve_of_either_cohort(tmp_path):
  folder, pairs = str(tmp_path), _scores()
  external = {'matrices': _curve(_external_scores()),
              'operating_point': _matrix(_external_scores(), THRESHOLD),
              'auc': 0.85}
  assert figures.roc_curve(folder, 'both.png', _curve(pairs),
                           _matrix(pairs, THRESHOLD), 0.91,
                           external=external) == 'both.png'
  assert figures.roc_curve(folder, 'ext.png', None,
                           external=external) == 'ext.png'
  assert figures.roc_curve(folder, 'x.png', None,
                           external={'matrices': None}) is None
  assert figures.confusion_matrix(
      folder, 'cm.png', _matrix(_external_scores(), THRESHOLD),
      title='external cohort') == 'cm.png'


def test_checks_show_their_cohort():
  data = _external_data(0.85)
  text = _html(data)
  assert 'NOT BLESSED' in text
  assert 'failed auc (value, external)' in text
  decision = _section(text, 'decision', 'threshold')
  assert ('Per cohort: internal <b>blessed</b> (20 examples); external '
          '<b>not blessed</b> (22 examples).') in decision
  table = _tables(decision)[0]
  assert table[0][0] == 'cohort'
  cohorts = [row[0] for row in table[1:]]
  assert cohorts == [c['cohort'] for c in data.decision['checks']]
  assert cohorts.count('external') == 2


def test_checks_without_a_cohort_are_internal():
  """A decision from before cohorts, beside an external evaluation."""
  decision = _decision(True, True)  # no `cohort`, no `cohorts`
  text = _html(_external_data(0.91, 2, decision=decision))
  cohorts = [row[0] for row in _tables(_section(text, 'decision',
                                                'threshold'))[0][1:]]
  assert cohorts == ['internal'] * 3
  assert 'Per cohort' not in text


def test_data_section_lists_the_external_cohort():
  text = _html(_external_data())
  data = text[text.index('id="external-data"'):]
  assert f'Dropped as also in the main data: {len(IN_MAIN)}' in data
  for entry in IN_MAIN:
    assert html.escape(entry['path']) in data  # escaped
    assert entry['main_path'] in data
    assert entry['sha256'][:12] in data
  assert 'child <0>' not in text
  counts = _tables(data)[0]
  assert counts[1] == ['external', '10', '12', '22', '19']
  assert html.escape('NORMAL/odd <name>.png') in data
  assert 'Files rejected: 1' in data and 'Duplicates dropped: 1' in data
  assert 'Entries ignored: 1' in data


def test_external_data_and_evaluation_missing_are_said(tmp_path):
  data = _external_data(external_metrics=None, external_plots=None,
                        external_baseline_plots=None,
                        external_ingestion=None)
  text, sources = _check_page(page.write_report(data, str(tmp_path)))
  assert 'No metrics of the external cohort' in text
  assert 'TFMA metrics of the external cohort' in text
  assert 'No ingestion report of the external cohort' in text
  assert 'confusion_matrix_external.png' not in sources
  assert 'class="warning"' not in text


def test_absent_external_cohort_leaves_the_page_as_it_was(tmp_path):
  os.makedirs(tmp_path / 'a')
  os.makedirs(tmp_path / 'b')
  before = page.write_report(_data(blessed=False), str(tmp_path / 'a'))
  decision = _decision(False, True)
  for check in decision['checks']:
    check['cohort'] = layout.COHORT_INTERNAL
  decision['cohorts'] = {  # as components/evaluator/cohorts.absent() says
      layout.COHORT_INTERNAL: {'present': True, 'blessed': False,
                               'examples': 20},
      layout.COHORT_EXTERNAL: {'present': False, 'blessed': None,
                               'examples': 0, 'note': 'no external cohort'}}
  after = page.write_report(_data(blessed=False, decision=decision,
                                  external_present=False),
                            str(tmp_path / 'b'))
  for name in sorted(os.listdir(tmp_path / 'a')):
    assert ((tmp_path / 'a' / name).read_bytes()
            == (tmp_path / 'b' / name).read_bytes()), name
  assert sorted(os.listdir(tmp_path / 'a')) == sorted(
      os.listdir(tmp_path / 'b'))
  text = pathlib.Path(after).read_text()
  assert 'external' not in text.lower()
  assert 'warning' not in pathlib.Path(before).read_text()


# --- an external cohort: reading the artifacts --------------------------------


def test_component_takes_an_optional_external_cohort():
  spec = component.RunReportSpec.INPUTS[reading.EXTERNAL_EXAMPLES_KEY]
  assert spec.optional and spec.type == standard_artifacts.Examples
  examples = types.Channel(type=standard_artifacts.Examples)
  with_cohort = component.RunReport(
      examples=examples, reports_dir='/r', pipeline_name='p',
      external_examples=types.Channel(type=standard_artifacts.Examples))
  assert reading.EXTERNAL_EXAMPLES_KEY in with_cohort.inputs
  without = component.RunReport(examples=examples, reports_dir='/r',
                                pipeline_name='p')
  assert reading.EXTERNAL_EXAMPLES_KEY not in without.inputs


def _add_external(inputs, root, present=True, evaluated=True):
  """An external cohort's Examples (and TFMA folder) beside _inputs'."""
  root = pathlib.Path(root)
  inputs['external_examples'] = _artifact(
      standard_artifacts.Examples, root / 'external_examples',
      **{layout.COHORT_PRESENT: int(present)})
  if present:
    _write_json(str(root / 'external_examples' /
                    layout.INGESTION_REPORT_FILE), _external_ingestion())
    _write_json(str(root / 'evaluation' / layout.DECISION_FILE),
                _cohort_decision(0.85))
  if present and evaluated:
    os.makedirs(root / 'evaluation' / layout.EXTERNAL_EVALUATION_DIR)
  return inputs


@pytest.fixture
def fake_external_tfma(monkeypatch):
  """fake_tfma, answering for <evaluation>/external with the external
  cohort's metrics and plots."""
  calls = []

  def external(uri):
    return os.path.basename(uri.rstrip('/')) == layout.EXTERNAL_EVALUATION_DIR

  def load_metrics(uri):
    calls.append(('metrics', uri))
    return _external_metrics(0.85, 4) if external(uri) else _metrics()

  def load_plots(uri, model='candidate'):
    calls.append(('plots', uri, model))
    return _plots(model, _external_scores(4) if external(uri) else None)

  monkeypatch.setattr(results, 'load_metrics', load_metrics)
  monkeypatch.setattr(results, 'load_plots', load_plots)
  return calls


def test_executor_reads_the_external_cohort(tmp_path, fake_external_tfma):
  root = tmp_path / 'artifacts'
  inputs = _add_external(_inputs(root, blessed=False), root)
  text, sources = _check_page(_run(inputs, tmp_path / 'reports'))
  external_uri = str(root / 'evaluation' / layout.EXTERNAL_EVALUATION_DIR)
  assert ('metrics', external_uri) in fake_external_tfma
  for model in ('candidate', 'baseline'):
    assert ('plots', external_uri, model) in fake_external_tfma
  assert 'class="warning"' in text
  assert 'failed auc (value, external)' in text
  assert 'roc_cohorts.png' in sources
  assert 'confusion_matrix_external.png' in sources
  assert html.escape(IN_MAIN[0]['path']) in text
  assert str(root / 'external_examples') in text  # in the artifacts read
  assert 'Missing from this run' not in text


def test_executor_without_an_external_cohort_shows_none(
    tmp_path, fake_external_tfma, monkeypatch):
  monkeypatch.setattr(executor, '_clock', lambda: 1700000000.0)
  plain = _run(_inputs(tmp_path / 'a', blessed=False), tmp_path / 'r1')
  absent = _add_external(_inputs(tmp_path / 'b', blessed=False),
                         tmp_path / 'b', present=False)
  text = pathlib.Path(_run(absent, tmp_path / 'r2')).read_text()
  plain_text = pathlib.Path(plain).read_text()
  assert text == plain_text.replace(str(tmp_path / 'a'), str(tmp_path / 'b'))
  assert not any(layout.EXTERNAL_EVALUATION_DIR in str(call[1])
                 for call in fake_external_tfma)


def test_executor_says_when_the_external_evaluation_is_missing(
    tmp_path, fake_external_tfma):
  root = tmp_path / 'a'
  inputs = _add_external(_inputs(root), root, evaluated=False)
  text, _ = _check_page(_run(inputs, tmp_path / 'reports'))
  assert 'TFMA output of the external cohort not found' in text
  assert 'No metrics of the external cohort' in text
  assert 'Dropped as also in the main data: 2' in text


# --- in a real browser --------------------------------------------------------


def _require_chromium():
  if browser.chromium_path() is None:
    message = ('chromium is not installed: run `make browser` or '
               '`apt-get install chromium` to test the report in a browser')
    if os.environ.get('CI') == 'true':
      pytest.fail(message)
    pytest.skip(message)


def test_report_images_load_in_chromium(tmp_path):
  _require_chromium()
  path = page.write_report(_data(blessed=False), str(tmp_path))
  total, broken = browser.broken_images(path)
  assert total >= 6 and not broken, (total, broken)

  # The check can fail: a missing PNG is seen as broken.
  os.remove(tmp_path / 'roc.png')
  total, broken = browser.broken_images(path)
  assert broken == ['roc.png'], broken



def test_external_cohort_page_images_load_in_chromium(tmp_path):
  _require_chromium()
  path = page.write_report(_external_data(), str(tmp_path))
  total, broken = browser.broken_images(path)
  assert total >= 9 and not broken, (total, broken)


def test_the_page_says_which_data_chose_the_threshold():
  eval_text = _html(_data())
  assert 'the eval split, for a target sensitivity of 0.95' in eval_text
  assert 'eval sensitivity' in eval_text
  info = _model_info()
  info[layout.MODEL_INFO_THRESHOLD_SOURCE] = {
      layout.THRESHOLD_CHOSEN_ON: layout.THRESHOLD_CHOSEN_ON_TEXT[
          constants.THRESHOLD_FROM_EXTERNAL],
      'images': 140, 'positives': 82, 'negatives': 58}
  site_text = _html(_data(model_info=info))
  assert "external cohort&#39;s calibration half (140 images" in site_text
  assert 'calibration sensitivity' in site_text
  assert 'the eval split, for' not in site_text
