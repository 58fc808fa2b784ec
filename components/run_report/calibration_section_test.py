"""The report's calibration section and the ensemble line: what the
Trainer recorded in model_info.json (issue 10), drawn and said."""
import os

import numpy as np

from components.run_report import drawing
from components.run_report import page
from components.run_report import view
from components.run_report.run import Run
from trainer import calibration


def _record(method):
  rng = np.random.default_rng(0)
  z = rng.normal(0, 3, 400)  # 3x too confident: the true slope is 1/3
  labels = (rng.random(400) < calibration.sigmoid(z / 3)).astype(int)
  return calibration.calibrate(z, labels, method)[1]


def _page(tmp_path, info):
  run = Run(model_info=info)
  folder = str(tmp_path)
  drawn = drawing.draw(run, folder)
  html = page.render(view.build(run), drawn, None, [])
  return drawn, html


def test_a_calibrated_model_shows_its_map_and_both_errors(tmp_path):
  record = _record(calibration.PLATT)
  drawn, html = _page(tmp_path, {'calibration': record})
  after = record['after_out_of_fold']['expected_calibration_error']
  before = record['before']['expected_calibration_error']
  assert after < before
  assert '<b>platt</b>-calibrated' in html
  assert f'{before:.4f} before, {after:.4f} after' in html
  assert drawn.calibration_fit == 'calibration_fit.png'
  assert os.path.getsize(tmp_path / 'calibration_fit.png') > 1000
  assert 'calibration_fit.png' in html


def test_an_uncalibrated_model_says_so_and_draws_no_fit(tmp_path):
  record = _record(calibration.NONE)
  drawn, html = _page(tmp_path, {'calibration': record})
  assert 'is not calibrated' in html
  assert f"{record['before']['expected_calibration_error']:.4f}" in html
  assert drawn.calibration_fit is None


def test_the_ensemble_line_names_members_and_what_shipped(tmp_path):
  record = {'members': ['baseline_cnn', 'improved_cnn'], 'eval_auc': 0.97,
            'best_single': 'improved_cnn', 'best_single_eval_auc': 0.96,
            'chosen': True}
  _, html = _page(tmp_path, {'ensemble': record, 'architecture': 'ensemble'})
  assert 'Shipped: the mean probability of baseline_cnn, improved_cnn' in html
  assert '0.9700 against 0.9600 for improved_cnn alone' in html
  record['chosen'] = False
  _, html = _page(tmp_path, {'ensemble': record})
  assert 'not better, so improved_cnn was shipped' in html
