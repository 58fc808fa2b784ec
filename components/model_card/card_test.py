"""Tests of the model card: its numbers are the evaluation's, every section
is there, the intervals are right, and the run report writes and links it.

Runs are constructed (run.Run, as reading.read_run returns them); TFMA's
summaries are built from (label, score) pairs, so the exact AUC is known.
"""
import dataclasses
import os
import pathlib

import numpy as np
import pytest

from components.model_card import card as card_lib
from components.model_card import intervals
from components.model_card import render
from components.run_report import figures
from components.run_report import page
from components.run_report import run as run_lib
from contract import layout

THRESHOLD = 0.4321
VERSION = '1800000123'


def _pairs(shift=0.0):
  """(label, score): 30 PNEUMONIA, 25 NORMAL, overlapping."""
  rng = np.random.default_rng(7)
  positives = np.clip(rng.normal(0.7 - shift, 0.2, 30), 0, 0.999)
  negatives = np.clip(rng.normal(0.3, 0.2, 25), 0, 0.999)
  return ([(1, float(s)) for s in positives]
          + [(0, float(s)) for s in negatives])


def _exact_auc(pairs):
  pos = [s for l, s in pairs if l]
  neg = [s for l, s in pairs if not l]
  wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
  return wins / (len(pos) * len(neg))


def _matrix(pairs):
  m = {'threshold': THRESHOLD, 'tp': 0.0, 'fp': 0.0, 'tn': 0.0, 'fn': 0.0}
  for label, score in pairs:
    above = score >= THRESHOLD
    m[('tp' if above else 'fn') if label else ('fp' if above else 'tn')] += 1
  return m


def _buckets(pairs):
  """TFMA's calibration histogram: 1,000 bins of 0.001 (as it writes it)."""
  out = []
  for i in range(1000):
    inside = [(l, s) for l, s in pairs if i / 1000 <= s < (i + 1) / 1000]
    out.append({'lower': i / 1000, 'upper': (i + 1) / 1000,
                'weight': float(len(inside)),
                'labels': float(sum(l for l, _ in inside)),
                'predictions': float(sum(s for _, s in inside))})
  return out


def _slice(pairs, name, out, auc):
  m = _matrix(pairs)
  r = figures.rates(m)
  out[(name, 'candidate', 'example_count')] = float(len(pairs))
  out[(name, 'candidate', 'confusion_matrix')] = [m]
  out[(name, 'candidate', 'recall')] = r['sensitivity'] or float('nan')
  out[(name, 'candidate', 'specificity')] = r['specificity'] or float('nan')
  out[(name, 'candidate', 'binary_accuracy')] = (m['tp'] + m['tn']) / len(
      pairs)
  out[(name, 'candidate', 'precision')] = m['tp'] / max(1, m['tp'] + m['fp'])
  out[(name, 'candidate', 'auc')] = auc


def _evaluation(pairs):
  metrics = {}
  _slice(pairs, 'overall', metrics, 0.8765)  # TFMA's, not the exact one
  metrics[('overall', 'candidate', 'pr_auc')] = 0.9012
  metrics[('overall', 'candidate', 'calibration')] = 1.0345
  _slice([p for p in pairs if not p[0]], 'subtype=normal', metrics, 0.0)
  _slice([p for p in pairs if p[0]], 'subtype=bacteria', metrics, 0.0)
  plots = {'overall': {'calibration': _buckets(pairs)}}
  return metrics, plots


def _run(external=False, **overrides):
  metrics, plots = _evaluation(_pairs())
  data = dict(
      pipeline_name='pneumonia', run_id='20260101-000000',
      created='2026-01-01 00:00:00 UTC',
      inputs={'examples': ['/x/examples/1'], 'evaluation': ['/x/eval/2']},
      ingestion={'counts': {'train': {'NORMAL': 70, 'PNEUMONIA': 170,
                                      'total': 240},
                            'test': {'NORMAL': 25, 'PNEUMONIA': 30,
                                     'total': 55}},
                 'patients': {'train': 200, 'test': 44},
                 'duplicates': [{'path': 'a.jpeg', 'duplicate_of': 'b.jpeg'}],
                 'rejected': [{'path': 'x.jpeg',
                               'reason': 'not an image <script>'}],
                 'ignored': {'count': 0, 'paths': []}},
      model_info={'architecture': 'improved_cnn', 'image_size': 64,
                  'threshold': THRESHOLD,
                  'operating_point': {'threshold': THRESHOLD,
                                      'target_sensitivity': 0.95,
                                      'sensitivity': 0.951,
                                      'specificity': 0.77, 'positives': 41,
                                      'negatives': 30},
                  'training_settings': {'profile': 'quick', 'epochs': 4}},
      training_settings={'profile': 'quick', 'epochs': 4},  # as read
      decision={'blessed': True, 'threshold': THRESHOLD,
                'checks': [{'metric': 'auc', 'kind': 'value', 'bound': 0.6,
                            'value': 0.8765, 'passed': True,
                            'cohort': 'internal'}]},
      metrics=metrics, plots=plots,
      pushed=run_lib.Pushed(True, VERSION, f'/srv/{VERSION}'))
  if external:
    ext_metrics, ext_plots = _evaluation(_pairs(shift=0.2))
    ext_metrics[('overall', 'candidate', 'auc')] = 0.7654
    data.update(external_metrics=ext_metrics, external_plots=ext_plots,
                external_ingestion={
                    'counts': {'external': {'NORMAL': 25, 'PNEUMONIA': 30,
                                            'total': 55}},
                    'patients': {'external': 50}, layout.IN_MAIN_DATA: [],
                    layout.COHORT_PRESENT: 1})
  data.update(overrides)
  return run_lib.Run(**data)


def _section(markdown, name):
  """The text of a `## name` section of the Markdown card."""
  after = markdown.split(f'\n## {name}\n', 1)[1]
  return after.split('\n## ', 1)[0]


def _row(section_text, label):
  """The cells of the Markdown table row that starts with `label`."""
  for line in section_text.splitlines():
    cells = [c.strip() for c in line.strip('|').split('|')]
    if cells[0] == label:
      return cells
  raise AssertionError(f'no row {label!r} in {section_text}')


# --- the numbers ----------------------------------------------------------------


def test_the_card_numbers_are_the_evaluation_artifacts(tmp_path):
  run = _run()
  card = card_lib.build(run)
  paths = render.write(card, str(tmp_path))
  markdown = pathlib.Path(paths['md']).read_text()
  html = pathlib.Path(paths['html']).read_text()
  metrics = _section(markdown, 'Metrics')
  for label, key in (('AUC (ROC)', 'auc'), ('PR-AUC', 'pr_auc'),
                     ('sensitivity (recall)', 'recall'),
                     ('specificity', 'specificity'),
                     ('precision (PPV)', 'precision'),
                     ('accuracy', 'binary_accuracy'),
                     ('mean prediction / mean label', 'calibration')):
    value = run.metrics[('overall', 'candidate', key)]
    cell = _row(metrics, label)[1]
    assert cell.split(' ')[0] == f'{value:.4f}', (label, cell)
    assert f'<td class="num">{value:.4f}' in html, label
  assert _row(metrics, 'images')[1] == '55'
  # The card keeps TFMA's AUC (0.8765), not its own estimate...
  auc = next(r for r in card.metrics.overall if r.label == 'AUC (ROC)')
  assert auc.estimate.value == 0.8765
  # ...and gives intervals: the AUC's around the pairs' exact AUC.
  exact = _exact_auc(_pairs())
  assert auc.estimate.interval.low < exact < auc.estimate.interval.high
  assert f'({auc.estimate.interval.low:.3f}–' in _row(metrics, 'AUC (ROC)')[1]
  details = _section(markdown, 'Model details')
  assert f'{THRESHOLD:.4f}' in details and VERSION in details
  assert 'improved_cnn' in details and 'the eval split' in details
  assert _row(details, 'epochs')[1] == '4'
  data = _section(markdown, 'Data')
  assert _row(data, 'test')[1:] == ['25', '30', '55', '44']
  assert 'CC BY 4.0' in data and 'paultimothymooney' in data
  assert 'Duplicates dropped: 1. Files rejected: 1' in data
  # Single-class slices have no AUC (TFMA writes 0 there).
  assert _row(metrics, 'subtype=normal')[4] == 'n/a (one class)'
  assert '&lt;script&gt;' in html and '<script>' not in html


def test_every_section_in_order_and_a_missing_one_fails(tmp_path):
  card = card_lib.build(_run())
  for ext in layout.MODEL_CARD_EXTENSIONS:
    text = render.render(card, ext)
    render.check_sections(text, ext)
    for name in card_lib.SECTIONS:
      broken = text.replace(f'## {name}\n', '').replace(f'>{name}</h2>', '>')
      with pytest.raises(render.MissingSectionError, match=name):
        render.check_sections(broken, ext)
  # A template that loses a section cannot write a card.
  extra = dataclasses.replace(card, sections=card.sections + ('Appendix',))
  with pytest.raises(render.MissingSectionError, match='Appendix'):
    render.write(extra, str(tmp_path))
  assert not os.listdir(tmp_path)  # nothing half-written


def test_a_missing_source_is_said_not_skipped():
  markdown = render.render(card_lib.build(_run(ingestion=None, plots=None)),
                           'md')
  assert 'Not available: no ingestion report.' in _section(markdown, 'Data')
  missing = markdown.split('\n## ', 1)[0]
  assert layout.INGESTION_REPORT_FILE in missing
  assert 'no AUC intervals' in missing
  auc = _row(_section(markdown, 'Metrics'), 'AUC (ROC)')[1]
  assert auc == '0.8765'  # the value, without an interval


def test_external_cohort_metrics_when_present():
  without = render.render(card_lib.build(_run()), 'md')
  assert 'No external cohort was evaluated' in _section(without,
                                                        'External cohort')
  run = _run(external=True)
  markdown = render.render(card_lib.build(run), 'md')
  external = _section(markdown, 'External cohort')
  assert _row(external, 'AUC (ROC)')[1].startswith('0.7654 (')
  recall = run.external_metrics[('overall', 'candidate', 'recall')]
  assert _row(external, 'sensitivity (recall)')[1].startswith(
      f'{recall:.4f} (')
  assert 'more than 0.02 lower' in external  # 0.8765 vs 0.7654
  assert _row(_section(markdown, 'Data'), 'external')[1:] == [
      '25', '30', '55', '50']


def test_the_calibration_limitation_follows_the_model():
  def limitations(info):
    card = card_lib.build(_run(model_info=info))
    return _section(render.render(card, 'md'), 'Limitations')

  info = _run().model_info
  assert 'not calibrated' in limitations(info)
  platt = limitations(dict(info, calibration={'method': 'platt'}))
  assert 'recalibrated on the eval split (platt)' in platt
  assert 'not calibrated' not in platt


def test_the_pushed_card_names_its_version():
  run = _run(pushed=None)
  before = card_lib.build(run)
  assert 'stopped before the push stage' in render.render(before, 'md')
  pushed = card_lib.with_version(before, '42', '/srv/42')
  text = render.render(pushed, 'md')
  assert text.startswith('# Model card: pneumonia improved_cnn version 42')
  assert 'Version: 42 (/srv/42)' in text


# --- the intervals --------------------------------------------------------------


def test_binned_auc_is_the_mann_whitney_auc():
  pairs = _pairs()
  bins = _buckets(pairs)
  positives = np.array([b['labels'] for b in bins])
  negatives = np.array([b['weight'] - b['labels'] for b in bins])
  # Bins of 0.001 leave these scores in distinct bins but for ties.
  rounded = [(l, int(s * 1000)) for l, s in pairs]
  assert intervals.auc_values(positives, negatives) == pytest.approx(
      _exact_auc(rounded))


def test_rate_intervals_are_seeded_and_cover_the_rate():
  matrix = _matrix(_pairs())
  first = intervals.rate_intervals(matrix)
  assert first == intervals.rate_intervals(matrix)
  rates = figures.rates(matrix)
  for name in ('sensitivity', 'specificity'):
    assert first[name].low <= rates[name] <= first[name].high
    assert first[name].high - first[name].low > 0.05
  one_class = intervals.rate_intervals({'tp': 5.0, 'fn': 1.0})
  assert one_class['specificity'] is None and one_class['sensitivity']
  assert intervals.auc_interval(_buckets([(1, 0.5), (1, 0.7)])) is None
  assert intervals.rate_intervals(None)['accuracy'] is None


# --- beside the run report ------------------------------------------------------


def test_the_report_writes_and_links_the_card(tmp_path):
  report = page.write_report(_run(), str(tmp_path))
  names = sorted(os.listdir(tmp_path))
  assert 'model_card.md' in names and 'model_card.html' in names
  html = pathlib.Path(report).read_text()
  assert '<a href="model_card.html">model card</a>' in html
  # A run without an evaluation (stopped earlier) gets no card and no link.
  other = tmp_path / 'partial'
  other.mkdir()
  partial = page.write_report(_run(inputs={'examples': ['/x']}), str(other))
  assert 'model_card' not in ' '.join(os.listdir(other))
  assert 'model card' not in pathlib.Path(partial).read_text()
