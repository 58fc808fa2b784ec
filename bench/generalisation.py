"""Generalisation ablation: which recipe changes help on another cohort?

A benchmark, not a test. For each recipe variant and each seed it trains one
architecture on kermany-224 outside the pipeline (ingested once, by patient
70/20/10, into a cache folder; then `trainer.run.train_and_export` on its
train/eval TFRecords with `TrainingSettings`), and scores the exported
SavedModel as a user would (`serving_default` on image bytes) on

  * the internal test split of kermany-224 (other children, same cohort),
  * kermany-224-external (282 files, 279 distinct, of Kaggle's test folder:
    another cohort). It is only ever scored: never trained or tuned on.

It prints ONE ablation table, mean (min-max) over the seeds: internal AUC,
external AUC, their gap, external sensitivity and specificity at the
model's shipped threshold (its `label` output), the worst epoch-to-epoch fall
of validation AUC and its value at the last epoch (training stability: the
shipped epoch is the best one, but a recipe whose last epochs are its best
is one that settles), and training minutes. A variant's
change against the first variant (the baseline) counts only where its mean
gain exceeds the spread: the larger of the two variants' min-max ranges over
the seeds (the verdict columns).

  python -m bench.generalisation --quick                    # 128 px, 6 epochs
  python -m bench.generalisation --quick --variants today,cosine --seeds 1,2,3
  python -m bench.generalisation --variants today,cosine    # 224 px, full
  python -m bench.generalisation --quick --table-only       # reprint results

Every (variant, seed) writes `result.json` under
`<output-dir>/<config>/<variant>/seed-<n>/` as soon as it is scored; a rerun
reuses results whose settings match (so an interrupted run resumes), and
`--fresh` retrains. Runs are long: progress lines name variant, seed and
epoch. Share the CPU with care: this is one training process.
"""
import argparse
import dataclasses
import hashlib
import json
import logging as std_logging
import os
import platform
import shutil
import statistics
import sys
import time
from typing import Any, Dict, List, Sequence, Tuple

from absl import logging
import keras
import numpy as np
import tensorflow as tf

from components.image_example_gen import component
from components.image_example_gen import walk
from contract import layout
from contract import names as constants
from contract import options
from contract import settings as config
from testing.support import SHARED_DATA
from trainer import run

# name -> (what it changes, TrainingSettings overrides). The first variant
# given is the baseline the others are judged against.
VARIANTS: Dict[str, Tuple[str, Dict[str, Any]]] = {
    'today': ('constant Adam learning rate (the recipe before issue 10)',
              {'lr_schedule': 'constant'}),
    'cosine': ('1 epoch linear warm-up, then cosine decay to 1% per step',
               {'lr_schedule': 'cosine', 'warmup_epochs': 1.0}),
    'plateau': ('1 epoch warm-up, then x0.3 after 1 epoch without a better '
                'val AUC', {'lr_schedule': 'plateau', 'warmup_epochs': 1.0}),
    'cosine_low': ('cosine (1 epoch warm-up) from a peak of 3e-4 instead of '
                   '1e-3', {'lr_schedule': 'cosine', 'warmup_epochs': 1.0,
                            'learning_rate': 3e-4}),
    'cosine_equalize': ('cosine + per-image histogram equalisation (model '
                        'input, so serving does the same)',
                        {'lr_schedule': 'cosine', 'warmup_epochs': 1.0,
                         'intensity_normalisation': 'equalize'}),
}
QUICK = {'image_size': 128, 'epochs': 6, 'patience': 3}
# (column, key, higher is better)
METRICS = (('internal AUC', 'internal_auc', True),
           ('external AUC', 'external_auc', True),
           ('gap', 'gap', False),
           ('ext. sensitivity', 'external_sensitivity', True),
           ('ext. specificity', 'external_specificity', True),
           ('worst val-AUC fall', 'worst_val_auc_fall', False),
           ('last-epoch val AUC', 'last_val_auc', True),
           ('train min', 'train_minutes', None))
MIN_SEEDS = 3  # fewer: no verdict
VERDICT_KEYS = ('internal_auc', 'external_auc', 'gap', 'external_sensitivity',
                'external_specificity', 'worst_val_auc_fall', 'last_val_auc')


def say(message: str) -> None:
  print(f'[bench {time.strftime("%H:%M:%S")}] {message}', flush=True)


class _Prefix(std_logging.Filter):
  """Keeps the Trainer's INFO lines (and every warning), with the current
  variant and seed before them; drops other libraries' INFO chatter."""
  prefix = ''

  def filter(self, record):
    trainer = f'{os.sep}trainer{os.sep}' in record.pathname
    if not trainer and record.levelno < std_logging.WARNING:
      return False
    if self.prefix:
      record.msg = f'{self.prefix} {record.msg}'
    return True


PREFIX = _Prefix()


# --- data ----------------------------------------------------------------------
def ingest_once(data_dir: str, cache: str) -> str:
  """kermany-224 ingested by patient into `cache` (once; reused after)."""
  if os.path.exists(os.path.join(cache, layout.INGESTION_REPORT_FILE)):
    say(f'reusing ingested examples in {cache}')
    return cache
  partial = cache + '.partial'
  shutil.rmtree(partial, ignore_errors=True)
  say(f'ingesting {data_dir} into {cache} (once)')
  start = time.perf_counter()
  component.ingest_outside_pipeline(data_dir, partial,
                                    config.direct_runner_args(1))
  os.rename(partial, cache)
  say(f'ingested in {time.perf_counter() - start:.0f} s')
  return cache


def split_files(examples: str, split: str) -> List[str]:
  files = sorted(tf.io.gfile.glob(os.path.join(examples, f'Split-{split}',
                                               '*')))
  if not files:
    raise SystemExit(f'no {split} files in {examples}')
  return files


def test_split(examples: str) -> Tuple[List[bytes], np.ndarray]:
  """(image bytes, labels) of the internal test split."""
  raws, labels = [], []
  dataset = tf.data.TFRecordDataset(split_files(examples, 'test'),
                                    compression_type='GZIP').batch(256)
  for batch in dataset:
    features = tf.io.parse_example(batch, {
        constants.IMAGE_KEY: tf.io.FixedLenFeature([], tf.string),
        constants.LABEL_KEY: tf.io.FixedLenFeature([], tf.int64)})
    raws += list(features[constants.IMAGE_KEY].numpy())
    labels += list(features[constants.LABEL_KEY].numpy())
  return raws, np.array(labels)


def external_cohort(folder: str) -> Tuple[List[bytes], np.ndarray, int]:
  """(image bytes, labels, files) of the external cohort, each distinct
  image once (byte-identical copies are one image, as ingestion counts)."""
  candidates, _ = walk.list_images(folder)
  seen, raws, labels = set(), [], []
  for candidate in sorted(candidates, key=lambda c: c.rel_path):
    with open(candidate.path, 'rb') as f:
      raw = f.read()
    digest = hashlib.sha256(raw).hexdigest()
    if digest not in seen:
      seen.add(digest)
      raws.append(raw)
      labels.append(candidate.label)
  if not raws:
    raise SystemExit(f'no images under {folder}')
  return raws, np.array(labels), len(candidates)


# --- scoring -------------------------------------------------------------------
def auc(labels: np.ndarray, scores: np.ndarray) -> float:
  """ROC AUC: the probability that a positive outscores a negative (ties
  count half)."""
  positive, negative = scores[labels == 1], scores[labels == 0]
  greater = (positive[:, None] > negative[None, :]).sum()
  ties = (positive[:, None] == negative[None, :]).sum()
  return float((greater + 0.5 * ties) / (positive.size * negative.size))


def serve(model_dir: str, raws: Sequence[bytes], batch: int = 64):
  """(probabilities, predicted PNEUMONIA) from serving_default on bytes."""
  signature = tf.saved_model.load(model_dir).signatures[
      constants.SERVING_SIGNATURE]
  probabilities, positive = [], []
  pneumonia = constants.LABEL_NAMES[constants.PNEUMONIA].encode()
  for start in range(0, len(raws), batch):
    out = signature(**{constants.SERVING_INPUT: tf.constant(
        list(raws[start:start + batch]))})
    probabilities += list(out[constants.PROBABILITY_OUTPUT].numpy())
    positive += [label == pneumonia
                 for label in out[constants.LABEL_OUTPUT].numpy()]
  return np.array(probabilities), np.array(positive)


def cohort_metrics(model_dir: str, raws, labels) -> Dict[str, float]:
  probabilities, positive = serve(model_dir, raws)
  return {
      'auc': auc(labels, probabilities),
      'sensitivity': float(positive[labels == 1].mean()),
      'specificity': float((~positive[labels == 0]).mean()),
      'images': int(labels.size),
      'positives': int((labels == 1).sum()),
  }


def worst_fall(history: List[Dict[str, Any]]) -> float:
  """The largest drop of val AUC from one epoch to the next (0 if none)."""
  values = [h['val_auc'] for h in history]
  return float(max([0.0] + [a - b for a, b in zip(values, values[1:])]))


# --- one run -------------------------------------------------------------------
def settings_for(variant: str, seed: int, args) -> options.TrainingSettings:
  overrides = dict(QUICK) if args.quick else {}
  for name in ('image_size', 'epochs', 'patience', 'batch_size'):
    if getattr(args, name) is not None:
      overrides[name] = getattr(args, name)
  overrides.update(VARIANTS[variant][1])
  return options.training_settings(
      'quick' if args.quick else 'full', architectures=[args.architecture],
      seed=seed, log_every_seconds=args.log_every_seconds,
      resnet_weights='none', **overrides)


def same_settings(recorded: Dict[str, Any],
                  settings: options.TrainingSettings) -> bool:
  """Whether a result's recorded settings are `settings`. A setting added
  to TrainingSettings since (absent from the record) counts as its default;
  one removed since is ignored."""
  fields = {f.name for f in dataclasses.fields(options.TrainingSettings)}
  try:
    then = options.TrainingSettings.from_dict(
        {k: v for k, v in recorded.items() if k in fields})
  except (TypeError, ValueError):
    return False
  return then == settings


def run_one(variant: str, seed: int, settings: options.TrainingSettings,
            folder: str, examples: str, internal, external,
            label: str) -> Dict[str, Any]:
  run_dir = os.path.join(folder, 'run')
  model_dir = os.path.join(folder, 'model', 'Format-Serving')
  # A previous result.json stays until this run's replaces it.
  for old in (run_dir, os.path.dirname(model_dir)):
    shutil.rmtree(old, ignore_errors=True)
  load_before = os.getloadavg()
  say(f'{label} training {settings.architectures[0]} at '
      f'{settings.image_size} px, up to {settings.epochs} epochs, '
      f'lr_schedule {settings.lr_schedule} (load average '
      f'{load_before[0]:.2f})')
  PREFIX.prefix = f'[{variant} seed {seed}]'
  start = time.perf_counter()
  try:
    rows = run.train_and_export(
        split_files(examples, 'train'), split_files(examples, 'eval'),
        settings, run_dir, model_dir)
  finally:
    PREFIX.prefix = ''
  wall = time.perf_counter() - start
  row = rows[0]
  with open(os.path.join(run_dir, row['architecture'], 'history.json')) as f:
    history = json.load(f)
  with open(os.path.join(model_dir, layout.MODEL_INFO_FILE)) as f:
    info = json.load(f)
  inside = cohort_metrics(model_dir, *internal)
  outside = cohort_metrics(model_dir, *external)
  result = {
      'variant': variant, 'seed': seed, 'settings': settings.to_dict(),
      'internal_auc': inside['auc'], 'external_auc': outside['auc'],
      'gap': inside['auc'] - outside['auc'],
      'internal_sensitivity': inside['sensitivity'],
      'internal_specificity': inside['specificity'],
      'external_sensitivity': outside['sensitivity'],
      'external_specificity': outside['specificity'],
      'internal_images': inside['images'],
      'external_images': outside['images'],
      'threshold': info['threshold'],
      'eval_operating_point': info['operating_point'],
      'val_auc': row['val_auc'], 'best_epoch': row['best_epoch'],
      'epochs_run': row['epochs_run'],
      'val_auc_by_epoch': [h['val_auc'] for h in history],
      'learning_rate_by_epoch': [h.get('learning_rate') for h in history],
      'worst_val_auc_fall': worst_fall(history),
      'train_minutes': row['seconds'] / 60, 'wall_minutes': wall / 60,
      'images_per_second': row['images_per_second'],
      'load_average_before': load_before[0],
      'load_average_after': os.getloadavg()[0],
  }
  with open(os.path.join(folder, 'result.json.partial'), 'w') as f:
    json.dump(result, f, indent=1)
  os.replace(os.path.join(folder, 'result.json.partial'),
             os.path.join(folder, 'result.json'))
  say(f'{label} done in {wall / 60:.1f} min: val AUC {row["val_auc"]:.4f} '
      f'(best epoch {row["best_epoch"]}/{row["epochs_run"]}); internal AUC '
      f'{inside["auc"]:.4f}, external AUC {outside["auc"]:.4f}, external '
      f'sensitivity {outside["sensitivity"]:.3f} / specificity '
      f'{outside["specificity"]:.3f} at threshold {info["threshold"]:.3f}')
  # Models of finished runs need not stay in memory.
  keras.backend.clear_session()
  return result


# --- the table -----------------------------------------------------------------
def _summary(values: Sequence[float]) -> Dict[str, float]:
  return {'mean': statistics.fmean(values), 'min': min(values),
          'max': max(values), 'spread': max(values) - min(values),
          'std': statistics.stdev(values) if len(values) > 1 else 0.0,
          'n': len(values)}


def _value(result: Dict[str, Any], key: str) -> float:
  if key == 'last_val_auc':  # derived: results before it lack the key
    return result['val_auc_by_epoch'][-1]
  return result[key]


def summarise(results: Dict[str, List[Dict[str, Any]]]):
  return {variant: {key: _summary([_value(r, key) for r in runs])
                    for _, key, _ in METRICS}
          for variant, runs in results.items() if runs}


def verdicts(summary, baseline: str) -> Dict[str, Dict[str, Dict[str, Any]]]:
  """For each variant but the baseline and each metric: the mean gain (in
  the better direction), the spread, and whether the gain exceeds it."""
  out = {}
  higher = {key: better for _, key, better in METRICS}
  for variant, stats in summary.items():
    if variant == baseline or baseline not in summary:
      continue
    out[variant] = {}
    for key in VERDICT_KEYS:
      sign = 1.0 if higher[key] else -1.0
      gain = sign * (stats[key]['mean'] - summary[baseline][key]['mean'])
      spread = max(stats[key]['spread'], summary[baseline][key]['spread'])
      enough = min(stats[key]['n'], summary[baseline][key]['n']) >= MIN_SEEDS
      out[variant][key] = {'gain': gain, 'spread': spread, 'enough': enough,
                           'counts': enough and gain > spread,
                           'worse': enough and -gain > spread}
  return out


def _cell(stat: Dict[str, float], digits: int = 3) -> str:
  return (f"{stat['mean']:.{digits}f} ({stat['min']:.{digits}f}–"
          f"{stat['max']:.{digits}f})")


def _word(verdict: Dict[str, Any]) -> str:
  if not verdict['enough']:
    return f'n/a (<{MIN_SEEDS} seeds)'
  if verdict['counts']:
    return 'counts'
  return 'worse' if verdict['worse'] else 'no'


def table(summary, judged, baseline: str) -> str:
  header = (['variant', 'seeds'] + [name for name, _, _ in METRICS] +
            ['verdict (external AUC)'])
  lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
  for variant, stats in summary.items():
    cells = [variant, str(stats['internal_auc']['n'])]
    for _, key, _ in METRICS:
      cells.append(_cell(stats[key], 1 if key == 'train_minutes' else 3))
    if variant == baseline:
      cells.append('baseline')
    else:
      v = judged[variant]['external_auc']
      cells.append(f"{_word(v)}: {v['gain']:+.3f} vs spread "
                   f"{v['spread']:.3f}")
    lines.append('| ' + ' | '.join(cells) + ' |')
  if judged:
    names = {key: name for name, key, _ in METRICS}
    header = ['variant vs ' + baseline] + [names[k] for k in VERDICT_KEYS]
    lines += ['', 'Gain (better direction) vs spread; "counts" only when '
              'the gain exceeds the spread, "worse" when the loss does:', '',
              '| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    for variant, by_key in judged.items():
      lines.append('| ' + ' | '.join([variant] + [
          f"{_word(by_key[k])} ({by_key[k]['gain']:+.3f} / "
          f"{by_key[k]['spread']:.3f})" for k in VERDICT_KEYS]) + ' |')
  return '\n'.join(lines) + '\n'


# --- main ----------------------------------------------------------------------
def parse_args(argv=None):
  parser = argparse.ArgumentParser(
      description=__doc__.splitlines()[0],
      formatter_class=argparse.RawDescriptionHelpFormatter,
      epilog='variants:\n' + '\n'.join(
          f'  {name:20s} {what}' for name, (what, _) in VARIANTS.items()))
  parser.add_argument('--quick', action='store_true',
                      help=f'iteration mode: {QUICK}')
  parser.add_argument('--variants', default='today,cosine',
                      help='comma-separated; the first is the baseline')
  parser.add_argument('--seeds', default='1,2,3',
                      help='comma-separated seeds (>= 3 for a verdict)')
  parser.add_argument('--architecture', default='improved_cnn',
                      choices=options.ARCHITECTURES,
                      help='ResNet50 starts from random weights here')
  parser.add_argument('--image-size', type=int)
  parser.add_argument('--epochs', type=int)
  parser.add_argument('--patience', type=int)
  parser.add_argument('--batch-size', type=int)
  parser.add_argument('--log-every-seconds', type=float, default=120.0)
  parser.add_argument('--data-dir', default=str(SHARED_DATA / 'kermany-224'))
  parser.add_argument('--external-dir',
                      default=str(SHARED_DATA / 'kermany-224-external'))
  parser.add_argument('--output-dir', default='output/bench/generalisation')
  parser.add_argument('--fresh', action='store_true',
                      help='retrain even where a matching result exists')
  parser.add_argument('--table-only', action='store_true',
                      help='print the table of the results so far')
  args = parser.parse_args(argv)
  args.variants = options.parse_list(args.variants)
  unknown = [v for v in args.variants if v not in VARIANTS]
  if unknown or not args.variants:
    parser.error(f'unknown variants {unknown}; choose from {list(VARIANTS)}')
  args.seeds = [int(s) for s in options.parse_list(args.seeds)]
  return args


def _config_name(args) -> str:
  s = settings_for(args.variants[0], 0, args)
  return (f"{'quick' if args.quick else 'full'}-{s.architectures[0]}-"
          f'{s.image_size}px-{s.epochs}ep-p{s.patience}-b{s.batch_size}')


def main(argv=None):
  args = parse_args(argv)
  logging.set_verbosity(logging.INFO)
  std_logging.getLogger('absl').addFilter(PREFIX)
  tf.get_logger().setLevel('ERROR')
  root = os.path.join(args.output_dir, _config_name(args))
  os.makedirs(root, exist_ok=True)
  say(f'{platform.node()}: {os.cpu_count()} CPUs, TF {tf.__version__}, '
      f'Python {platform.python_version()}; load average '
      f'{os.getloadavg()[0]:.2f}; results in {root}')
  # Seed by seed, so a partial run has every variant about equally often.
  plan = [(v, s) for s in args.seeds for v in args.variants]
  results: Dict[str, List[Dict[str, Any]]] = {v: [] for v in args.variants}
  internal = external = examples = None
  start = time.perf_counter()
  for k, (variant, seed) in enumerate(plan, 1):
    settings = settings_for(variant, seed, args)
    folder = os.path.join(root, variant, f'seed-{seed}')
    result_file = os.path.join(folder, 'result.json')
    if os.path.exists(result_file) and not args.fresh:
      with open(result_file) as f:
        previous = json.load(f)
      if same_settings(previous['settings'], settings):
        results[variant].append(previous)
        say(f'[{variant} seed {seed}] ({k}/{len(plan)}) reusing {result_file}')
        continue
    if args.table_only:
      continue
    if examples is None:
      examples = ingest_once(args.data_dir, os.path.join(
          args.output_dir, 'examples-' + os.path.basename(
              args.data_dir.rstrip('/'))))
      internal = test_split(examples)
      raws, labels, files = external_cohort(args.external_dir)
      external = (raws, labels)
      say(f'internal test split: {len(internal[1])} images '
          f'({int(internal[1].sum())} PNEUMONIA); external cohort: '
          f'{len(labels)} distinct images of {files} files '
          f'({int(labels.sum())} PNEUMONIA)')
    results[variant].append(run_one(
        variant, seed, settings, folder, examples, internal, external,
        f'[{variant} seed {seed}] ({k}/{len(plan)})'))
  summary = summarise(results)
  baseline = args.variants[0]
  judged = verdicts(summary, baseline)
  text = table(summary, judged, baseline)
  with open(os.path.join(root, 'results.json'), 'w') as f:
    json.dump({'config': _config_name(args), 'variants': {
        v: VARIANTS[v][0] for v in args.variants}, 'summary': summary,
               'verdicts': judged, 'runs': results}, f, indent=1)
  with open(os.path.join(root, 'table.md'), 'w') as f:
    f.write(text)
  print()
  print(f'{_config_name(args)}: {args.architecture}, seeds '
        f'{",".join(map(str, args.seeds))}; mean (min–max) over seeds; '
        f'sensitivity/specificity at the shipped threshold; gap = internal − '
        f'external AUC; spread = the larger min–max range of the two '
        f'variants compared.')
  for variant in args.variants:
    print(f'  {variant}: {VARIANTS[variant][0]}')
  print()
  print(text)
  missing = [f'{v} seed {s}' for v, s in plan
             if s not in [r['seed'] for r in results[v]]]
  if missing:
    print('not run yet: ' + ', '.join(missing))
  print(f'{len(plan) - len(missing)} runs; this call took '
        f'{(time.perf_counter() - start) / 60:.1f} min; load average now '
        f'{os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs')
  return 0


if __name__ == '__main__':
  sys.exit(main())
