"""End-to-end: evaluation, blessing, push, the run report and retraining.

Run 1 trains on 240 real images (distinct patients) and, with nothing
deployed, is judged on value thresholds alone: it is blessed and pushed.
Run 2 is a negative control trained on permuted labels: it must not be
blessed (AUC below the bound and worse than the deployed model), nothing is
pushed, version 1 keeps serving unchanged, and the report says why.
Run 3 is scheduled retraining, locally: the data folder has grown, so
ingestion runs again, a new model is trained and it is compared with the
model run 1 pushed.
"""
import glob
import hashlib
import json
import os
import re
import shutil

from contract import settings as config
from contract import names as constants
from testing import browser
from testing import images
from testing.support import executions
from testing.support import run_cli

_PER_CLASS = 120


def _tree_digest(folder):
  digest = hashlib.sha256()
  for root, _, files in sorted(os.walk(folder)):
    for name in sorted(files):
      path = os.path.join(root, name)
      digest.update(os.path.relpath(path, folder).encode())
      with open(path, 'rb') as f:
        digest.update(f.read())
  return digest.hexdigest()


def _latest_decision(output_dir):
  folders = glob.glob(os.path.join(
      config.output_paths(str(output_dir))['pipeline_root'],
      'Evaluator', 'evaluation', '*'))
  newest = max(folders, key=lambda p: int(os.path.basename(p)))
  with open(os.path.join(newest, 'blessing_decision.json')) as f:
    return json.load(f)


def _latest_report(output_dir):
  latest = os.path.join(config.output_paths(str(output_dir))['reports_dir'],
                        'latest')
  assert os.path.islink(latest)
  report = os.path.join(os.path.realpath(latest), 'report.html')
  with open(report) as f:
    return report, f.read()


def test_bless_push_then_refuse_a_worse_model(kermany_224, original_sample,
                                              tmp_path):
  data_dir, output_dir = tmp_path / 'data', tmp_path / 'output'
  images.copy_patients(kermany_224, data_dir, count=_PER_CLASS)
  args = ['local_runner.py', '--data-dir', data_dir, '--output-dir',
          output_dir, '--profile', 'quick', '--image-size', '64',
          '--epochs', '8', '--batch-size', '16', '--architectures',
          'improved_cnn', '--workers', '1', '--min-auc', '0.75',
          '--min-recall', '0.75']
  serving = config.output_paths(str(output_dir))['serving_model_dir']

  # --- run 1: nothing deployed; value thresholds alone ---------------------
  first = run_cli(args)
  assert first.returncode == 0, first.stderr[-5000:]
  decision = _latest_decision(output_dir)
  assert decision['baseline'] is None
  assert decision['blessed'] is True, decision
  versions = sorted(os.listdir(serving))
  assert len(versions) == 1 and versions[0].isdigit(), versions
  version_one = os.path.join(serving, versions[0])
  assert os.path.exists(os.path.join(version_one, 'saved_model.pb'))
  before = _tree_digest(version_one)
  report_one, html_one = _latest_report(output_dir)
  assert 'NOT BLESSED' not in html_one and 'BLESSED' in html_one
  assert versions[0] in html_one  # the pushed version is named
  total, broken = browser.broken_images(report_one)
  assert total >= 6 and not broken, broken

  # --- run 2: negative control against the deployed model -----------------
  second = run_cli(args + ['--shuffle-labels'])
  assert second.returncode == 0, second.stderr[-5000:]
  decision = _latest_decision(output_dir)
  assert decision['baseline']['version'] == versions[0]
  assert decision['blessed'] is False, decision
  failed = {(c['metric'], c['kind']) for c in decision['checks']
            if not c['passed']}
  assert ('auc', 'change') in failed, decision['checks']
  assert sorted(os.listdir(serving)) == versions  # nothing pushed
  assert _tree_digest(version_one) == before  # version 1 untouched
  states = executions(config.output_paths(str(output_dir))['metadata_path'])
  assert ('Pusher', 'COMPLETE') in states[len(states) // 2:]

  report_two, html_two = _latest_report(output_dir)
  assert report_two != report_one and os.path.exists(report_one)
  assert 'NOT BLESSED' in html_two
  assert versions[0] in html_two  # the baseline it was compared with
  assert re.search(r'auc', html_two, re.I)
  total, broken = browser.broken_images(report_two)
  assert total >= 6 and not broken, broken

  # --- run 3: retraining on a grown data folder ----------------------------
  images.copy_patients(kermany_224, data_dir / 'new' / 'batch2',
                       first=_PER_CLASS, count=20)
  runs_before = len(executions(
      config.output_paths(str(output_dir))['metadata_path']))
  third = run_cli(args)
  assert third.returncode == 0, third.stderr[-5000:]
  states = executions(
      config.output_paths(str(output_dir))['metadata_path'])[runs_before:]
  assert ('ImageExampleGen', 'COMPLETE') in states, states  # not cached
  assert ('Trainer', 'COMPLETE') in states, states  # a new model
  assert 'Ingested 280 images' in third.stderr
  decision = _latest_decision(output_dir)
  assert decision['baseline']['version'] == versions[0], decision
  served = sorted(os.listdir(serving), key=int)
  assert served[0] == versions[0]
  assert len(served) == (2 if decision['blessed'] else 1), (served, decision)

  # --- the served model answers the predict CLI ---------------------------
  image = sorted((original_sample / 'chest_xray' / 'train' / 'NORMAL').glob(
      '*.jpeg'))[0]
  predicted = run_cli(['predict.py', '--output-dir', output_dir, image],
                      timeout=300)
  assert predicted.returncode == 0, predicted.stderr[-3000:]
  (line,) = predicted.stdout.strip().splitlines()
  result = json.loads(line)
  assert result['model'].rstrip('/').endswith(served[-1])
  assert result['label'] in constants.LABEL_NAMES
