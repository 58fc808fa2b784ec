"""The whole pipeline on all of kermany-224: per-stage wall time, the share
of training, and the blessing checks on both cohorts.

Runs `local_runner.py` with its defaults and one profile on
../shared/data/kermany-224 (5,216 images) with
../shared/data/kermany-224-external as the external cohort (scored only,
never trained on), `--resnet-weights none` (no ImageNet download here), then
reads every stage's time from ML Metadata and the Evaluator's
blessing_decision.json, prints the Trainer's architecture comparison (epochs,
why each stopped, minutes) and scores the exported model as a user calls it
(`serving_default`) on the internal test split and on the external cohort:
AUC, sensitivity and specificity at its shipped threshold.

  python -m bench.pipeline [--profile quick] [--before "ARGS"] [-- ARGS]

With `--before`, a "before" recipe (local_runner args, e.g. the defaults of
an earlier round) runs first in the same bench run and the after/before
ratio of whole-run and training time is printed with both external AUCs:
times vary between machines, so a ratio is measured side by side.
"""
import argparse
import glob
import json
import os
import shlex
import tempfile
import time
from typing import Dict, List, NamedTuple

from bench import generalisation_data
from bench import generalisation_scoring
from bench.stages import stage_seconds
from contract import layout
from contract import settings as config
from testing.support import REPO, require_shared_data, run_cli


def decision(pipeline_root: str) -> dict:
  """The newest blessing_decision.json under the pipeline root."""
  found = glob.glob(os.path.join(pipeline_root, 'Evaluator', 'evaluation',
                                 '*', layout.DECISION_FILE))
  if not found:
    return {}
  with open(max(found, key=os.path.getmtime)) as f:
    return json.load(f)


def _newest(pattern: str) -> str:
  found = glob.glob(pattern)
  return max(found, key=os.path.getmtime) if found else ''


def comparison(pipeline_root: str) -> list:
  """The Trainer's comparison rows (empty if it did not run)."""
  run_dir = _newest(os.path.join(pipeline_root, 'Trainer', 'model_run', '*'))
  if not run_dir:
    return []
  with open(layout.comparison_file(run_dir)) as f:
    return json.load(f)


def cohorts(pipeline_root: str, external: str) -> dict:
  """{cohort: metrics} of the Trainer's exported model through
  serving_default at its shipped threshold."""
  model = _newest(os.path.join(pipeline_root, 'Trainer', 'model', '*',
                               'Format-Serving'))
  examples = _newest(os.path.join(pipeline_root, 'ImageExampleGen',
                                  'examples', '*'))
  if not (model and examples):
    return {}
  with open(os.path.join(model, layout.MODEL_INFO_FILE)) as f:
    info = json.load(f)
  raws, labels = generalisation_data.test_split(examples)
  external_raws, external_labels, _ = generalisation_data.external_cohort(
      external)
  return {
      layout.COHORT_INTERNAL: generalisation_scoring.cohort_metrics(
          model, raws, labels, info),
      layout.COHORT_EXTERNAL: generalisation_scoring.cohort_metrics(
          model, external_raws, external_labels, info)}


def print_training(rows: list, scored: dict) -> None:
  if rows:
    print('\n| architecture | val AUC | best epoch | epochs run | stopped by '
          '| min | selected |\n|---|---|---|---|---|---|---|')
    for r in rows:
      print(f"| {r['architecture']} | {r['val_auc']:.4f} | {r['best_epoch']} "
            f"| {r['epochs_run']} | {layout.stopped_by_text(r)} | "
            f"{r['seconds'] / 60:.1f} | {'yes' if r['selected'] else ''} |")
  if scored:
    print('\n| cohort (serving_default, shipped threshold) | images | AUC | '
          'sensitivity | specificity |\n|---|---|---|---|---|')
    for cohort, m in scored.items():
      print(f"| {cohort} | {m['images']} | {m['auc']:.4f} | "
            f"{m['sensitivity']:.3f} | {m['specificity']:.3f} |")
    gap = (scored[layout.COHORT_INTERNAL]['auc'] -
           scored[layout.COHORT_EXTERNAL]['auc'])
    print(f'internal AUC minus external AUC: {gap:.4f}')


class Run(NamedTuple):
  label: str
  command: List[str]
  returncode: int
  stderr: str
  wall: float
  seconds: Dict[str, float]
  decision: dict
  rows: list
  scored: dict


def run_pipeline(label: str, profile: str, extra: List[str], data: str,
                 external: str) -> Run:
  """One run of local_runner.py in a fresh output folder, read back."""
  with tempfile.TemporaryDirectory(dir=REPO.parent) as tmp:
    command = ['local_runner.py', '--data-dir', data, '--external-data-dir',
               external, '--output-dir', tmp, '--profile', profile,
               '--resnet-weights', 'none', *extra]
    print(f'[{label}] {time.strftime("%H:%M:%S")} starts: '
          f'{" ".join(command[1:])}'.replace(tmp, 'OUT'), flush=True)
    start = time.perf_counter()
    result = run_cli(command, timeout=6 * 3600)
    wall = time.perf_counter() - start
    paths = config.output_paths(tmp)
    root = paths['pipeline_root']
    return Run(label, [c.replace(tmp, 'OUT') for c in map(str, command)],
               result.returncode, result.stderr, wall,
               stage_seconds(paths['metadata_path']), decision(root),
               comparison(root), cohorts(root, external))


def print_run(run: Run) -> None:
  seconds, wall = run.seconds, run.wall
  print(f'\n## {run.label}: {len(seconds)} stages, exit code '
        f'{run.returncode}, {" ".join(run.command[1:])}')
  if run.returncode:
    print(run.stderr[-3000:])
  trainer = seconds.get('Trainer', 0.0)
  print(f'\nwhole run {wall / 60:.1f} min; training {trainer / 60:.1f} min '
        f'({trainer / wall:.0%} of the run)\n')
  print('| stage | s | share of the run |\n|---|---|---|')
  for node in sorted(seconds, key=lambda n: -seconds[n]):
    print(f'| {node} | {seconds[node]:.1f} | {seconds[node] / wall:.1%} |')
  outside = wall - sum(seconds.values())
  print(f'| (start-up, compilation, between stages) | {outside:.1f} | '
        f'{outside / wall:.1%} |')
  print_training(run.rows, run.scored)
  found = run.decision
  if found:
    print(f"\nexported {found.get('architecture')}, threshold "
          f"{found.get('threshold')}, blessed {found.get('blessed')}")
    for check in found.get('checks', []):
      value = check.get('value')
      print(f"  {check['cohort']:8s} {check['metric']:24s} {check['kind']:6s}"
            f" {value if value is None else round(value, 4)}"
            f"  (bound {check.get('bound')}, passed {check['passed']})")


def print_ratio(before: Run, after: Run) -> None:
  """After against before, measured in this one bench run."""
  def external_auc(run):
    return run.scored.get(layout.COHORT_EXTERNAL, {}).get('auc', float('nan'))
  train = (after.seconds.get('Trainer', 0.0) /
           max(before.seconds.get('Trainer', 0.0), 1e-9))
  print(f'\n## after / before (one bench run)\n\nwhole run '
        f'{after.wall / 60:.1f} / {before.wall / 60:.1f} min = '
        f'{after.wall / before.wall:.2f}; training {train:.2f}; external '
        f'AUC {external_auc(after):.4f} vs {external_auc(before):.4f} '
        f'({external_auc(after) - external_auc(before):+.4f})')


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--profile', default='quick')
  parser.add_argument(
      '--before', default=None, metavar='"ARGS"',
      help='local_runner args of a "before" recipe, run first in this same '
      'bench run; the ratio of the two is printed')
  parser.add_argument('extra', nargs='*', help='more local_runner args')
  args = parser.parse_args()
  data = str(require_shared_data('kermany-224'))
  external = str(require_shared_data('kermany-224-external'))
  runs = []
  if args.before is not None:
    runs.append(run_pipeline('before', args.profile, shlex.split(args.before),
                             data, external))
  runs.append(run_pipeline('after' if runs else 'run', args.profile,
                           args.extra, data, external))
  for run in runs:
    print_run(run)
  if len(runs) == 2:
    print_ratio(*runs)


if __name__ == '__main__':
  main()
