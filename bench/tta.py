"""Test-time views: do a few crops of each image pay for their cost?

A benchmark, not a test. It reuses the models bench/generalisation trained
(each seed's best-epoch checkpoints under <results>/<variant>/seed-<n>/run)
and, side by side in one run, exports each as a SavedModel with 1, 3 and 5
test-time views (trainer/ensemble.VIEW_BOXES; the `test_time_views`
setting), then for each:

  * chooses the operating threshold on the eval split the Trainer's way
    (contract/operating_point, on the served probabilities),
  * scores the internal test split and kermany-224-external through
    `serving_default` on image bytes (AUC; sensitivity and specificity at
    that threshold),
  * times serving (ms per image, batches of 64, the external cohort).

The models are the same in every column, so a difference is the views'
alone; over the seeds, a gain counts only where it exceeds the spread.

  python -m bench.tta --results output/bench/generalisation/quick-improved_cnn-128px-6ep-p3-b32
  python -m bench.tta --results ... --variant ensemble --every-architecture

With --every-architecture the ensemble variant's trained architectures are
scored as their mean probability even where the Trainer shipped one of them
(its eval AUC was not higher): the ensemble's external figures, side by side.
"""
import argparse
import json
import os
import tempfile
import time
from typing import Any, Dict, List

from absl import logging
import numpy as np
import tensorflow as tf

from bench import generalisation_data as bench_data
from bench import generalisation_scoring as scoring
from bench import generalisation_table as bench_table
from bench.generalisation_data import say
from contract import operating_point
from contract import options
from testing.support import SHARED_DATA
from trainer import ensemble
from trainer import models
from trainer import signatures

COLUMNS = (('internal AUC', 'internal_auc'), ('external AUC', 'external_auc'),
           ('gap', 'gap'), ('ext. sensitivity', 'external_sensitivity'),
           ('ext. specificity', 'external_specificity'),
           ('ms/image', 'ms_per_image'))


def _members(folder: str, result: Dict[str, Any], every: bool):
  """The shipped model's members (`every`: all trained architectures, as an
  ensemble whether or not it shipped) at their best epochs' checkpoints."""
  settings = options.TrainingSettings.from_dict(result['settings'])
  with open(os.path.join(folder, 'run', 'comparison.json')) as f:
    rows = {row['architecture']: row for row in json.load(f)}
  names = (list(rows) if every else
           result.get('members') or [result.get('shipped')])
  members = []
  for name in names:
    model = models.build_model(
        name, settings.image_size, 100, l2=settings.l2,
        dropout=settings.dropout,
        intensity_normalisation=settings.intensity_normalisation,
        border_crop=settings.border_crop)
    model.load_weights(os.path.join(
        folder, 'run', name, 'checkpoints',
        f"epoch-{rows[name]['best_epoch']:03d}.weights.h5"))
    members.append(model)
  return settings, members


def _at(threshold: float, probabilities, labels) -> Dict[str, float]:
  positive = probabilities >= np.float32(threshold)
  return {'sensitivity': float(positive[labels == 1].mean()),
          'specificity': float((~positive[labels == 0]).mean())}


def score_views(folder, result, views, cohorts,
                every: bool = False) -> Dict[str, Any]:
  settings, members = _members(folder, result, every)
  with tempfile.TemporaryDirectory() as export_dir:
    signatures.export(ensemble.Scorer(members, views), export_dir,
                      settings.image_size, 0.5, info={})
    scores = {}
    for name, (raws, labels) in cohorts.items():
      start = time.perf_counter()
      scores[name] = scoring.serve(export_dir, raws)[0]
      if name == 'external':
        ms = 1000 * (time.perf_counter() - start) / len(raws)
  point = operating_point.choose_threshold(
      scores['eval'], cohorts['eval'][1], settings.target_sensitivity,
      margin=operating_point.SERVING_TOLERANCE)
  out = {'views': views, 'threshold': point.threshold, 'ms_per_image': ms}
  for name in ('internal', 'external'):
    labels = cohorts[name][1]
    out[f'{name}_auc'] = scoring.auc(labels, scores[name])
    for key, value in _at(point.threshold, scores[name], labels).items():
      out[f'{name}_{key}'] = value
  out['gap'] = out['internal_auc'] - out['external_auc']
  return out


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--results', required=True,
                      help='a bench/generalisation config folder')
  parser.add_argument('--variant', default='today')
  parser.add_argument('--views', default='1,3,5')
  parser.add_argument('--every-architecture', action='store_true',
                      help='score the mean of every trained architecture '
                      '(the ensemble), shipped or not')
  parser.add_argument('--examples', default=None,
                      help='the ingested kermany-224 (default: beside '
                      'the results, examples-kermany-224)')
  parser.add_argument('--external-dir',
                      default=str(SHARED_DATA / 'kermany-224-external'))
  args = parser.parse_args(argv)
  logging.set_verbosity(logging.WARNING)
  tf.get_logger().setLevel('ERROR')
  views = [int(v) for v in options.parse_list(args.views)]
  examples = args.examples or os.path.join(
      os.path.dirname(args.results.rstrip('/')), 'examples-kermany-224')
  raws, labels, _ = bench_data.external_cohort(args.external_dir)
  cohorts = {'eval': bench_data.split_images(examples, 'eval'),
             'internal': bench_data.test_split(examples),
             'external': (raws, labels)}
  variant_dir = os.path.join(args.results, args.variant)
  runs: Dict[int, List[Dict[str, Any]]] = {v: [] for v in views}
  for seed_dir in sorted(os.listdir(variant_dir)):
    folder = os.path.join(variant_dir, seed_dir)
    result_file = os.path.join(folder, 'result.json')
    if not os.path.exists(result_file):
      continue
    with open(result_file) as f:
      result = json.load(f)
    for v in views:  # side by side: the same models in every column
      out = score_views(folder, result, v, cohorts, args.every_architecture)
      out['seed'] = result['seed']
      runs[v].append(out)
      say(f"[{args.variant} {seed_dir}] {v} views: external AUC "
          f"{out['external_auc']:.4f}, specificity "
          f"{out['external_specificity']:.3f} at {out['threshold']:.3f}, "
          f"{out['ms_per_image']:.1f} ms/image")
  lines = ['| views | seeds | ' + ' | '.join(c for c, _ in COLUMNS) +
           ' | external AUC vs 1 view |', '|' + '---|' * (len(COLUMNS) + 3)]
  base = bench_table.summary_stats([r['external_auc'] for r in runs[views[0]]])
  for v in views:
    stats = {key: bench_table.summary_stats([r[key] for r in runs[v]])
             for _, key in COLUMNS}
    gain = stats['external_auc']['mean'] - base['mean']
    spread = max(stats['external_auc']['spread'], base['spread'])
    verdict = ('baseline' if v == views[0] else
               f"{'counts' if gain > spread else 'no'}: {gain:+.3f} vs "
               f'spread {spread:.3f}')
    lines.append(f'| {v} | {len(runs[v])} | ' + ' | '.join(
        bench_table.cell(stats[key], 1 if key == 'ms_per_image' else 3)
        for _, key in COLUMNS) + f' | {verdict} |')
  text = '\n'.join(lines) + '\n'
  stem = 'tta-every' if args.every_architecture else 'tta'
  with open(os.path.join(variant_dir, stem + '.json'), 'w') as f:
    json.dump({str(v): r for v, r in runs.items()}, f, indent=1)
  with open(os.path.join(variant_dir, stem + '.md'), 'w') as f:
    f.write(text)
  print(text)


if __name__ == '__main__':
  main()
