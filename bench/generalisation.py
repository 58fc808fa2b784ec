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

The recipes (VARIANTS) and the command line are here; the data in
generalisation_data.py, one (variant, seed) run in generalisation_run.py,
scoring a SavedModel in generalisation_scoring.py, the table and verdicts
in generalisation_table.py.
"""
import argparse
import json
import logging as std_logging
import os
import platform
import sys
import time
from typing import Any, Dict, List, Tuple

from absl import logging
import tensorflow as tf

from bench import generalisation_data as bench_data
from bench import generalisation_run as bench_run
from bench import generalisation_table as bench_table
from bench.generalisation_data import say
from contract import options
from testing.support import SHARED_DATA

# name -> (what it changes, TrainingSettings overrides). The first variant
# given is the baseline the others are judged against.
VARIANTS: Dict[str, Tuple[str, Dict[str, Any]]] = {
    'today': ('constant Adam learning rate, BatchNorm statistics as Keras\' '
              'moving averages (the recipe before issue 10)',
              {'lr_schedule': 'constant', 'batchnorm_sample_images': 0}),
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
    'label_smoothing': ('binary cross-entropy with label smoothing 0.1 '
                        '(targets 0.05 / 0.95)', {'label_smoothing': 0.1}),
    'acquisition': ('acquisition augmentation: + resized crop, stronger '
                    'contrast/gamma, blur/sharpen, JPEG (both classes alike)',
                    {'augmentation_policy': 'acquisition'}),
    'ensemble': ('baseline_cnn and improved_cnn, their mean probability '
                 'shipped when it beats the better one on eval; Platt '
                 'calibration on eval', {
                     'architectures': ('baseline_cnn', 'improved_cnn'),
                     'ensemble': True, 'calibration': 'platt'}),
    'platt': ('Platt calibration on eval (ranking unchanged)',
              {'calibration': 'platt'}),
    'acquisition_equalize': ('acquisition augmentation + per-image '
                             'histogram equalisation',
                             {'augmentation_policy': 'acquisition',
                              'intensity_normalisation': 'equalize'}),
    'clahe': ('contrast-limited adaptive histogram equalisation (8x8 '
              'regions, clip 2) as the model\'s first layer',
              {'intensity_normalisation': 'clahe'}),
    'border_crop': ('8% of the side cut from each edge (markers, text) '
                    'inside the model', {'border_crop': 0.08}),
    'precise_bn': ('BatchNorm statistics recomputed from 512 unaugmented '
                   'train images before every validation, not Keras\' '
                   'moving averages', {'batchnorm_sample_images': 512}),
    'clahe_border': ('border crop 8%, then CLAHE',
                     {'border_crop': 0.08, 'intensity_normalisation': 'clahe'}),
}
QUICK = {'image_size': 128, 'epochs': 6, 'patience': 3}


def settings_for(variant: str, seed: int, args) -> options.TrainingSettings:
  overrides = dict(QUICK) if args.quick else {}
  for name in ('image_size', 'epochs', 'patience', 'batch_size'):
    if getattr(args, name) is not None:
      overrides[name] = getattr(args, name)
  overrides['architectures'] = [args.architecture]
  overrides.update(VARIANTS[variant][1])
  return options.training_settings(
      'quick' if args.quick else 'full',
      seed=seed, log_every_seconds=args.log_every_seconds,
      resnet_weights='none', **overrides)


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
  std_logging.getLogger('absl').addFilter(bench_run.PREFIX)
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
      if bench_run.same_settings(previous['settings'], settings):
        results[variant].append(previous)
        say(f'[{variant} seed {seed}] ({k}/{len(plan)}) reusing {result_file}')
        continue
    if args.table_only:
      continue
    if examples is None:
      examples = bench_data.ingest_once(args.data_dir, os.path.join(
          args.output_dir, 'examples-' + os.path.basename(
              args.data_dir.rstrip('/'))))
      internal = bench_data.test_split(examples)
      raws, labels, files = bench_data.external_cohort(args.external_dir)
      external = (raws, labels)
      say(f'internal test split: {len(internal[1])} images '
          f'({int(internal[1].sum())} PNEUMONIA); external cohort: '
          f'{len(labels)} distinct images of {files} files '
          f'({int(labels.sum())} PNEUMONIA)')
    results[variant].append(bench_run.run_one(
        variant, seed, settings, folder, examples, internal, external,
        f'[{variant} seed {seed}] ({k}/{len(plan)})'))
  summary = bench_table.summarise(results)
  baseline = args.variants[0]
  judged = bench_table.verdicts(summary, baseline)
  text = bench_table.table(summary, judged, baseline)
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
