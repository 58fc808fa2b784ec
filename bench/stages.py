"""Per-stage wall time of the real pipeline at two data sizes, to separate
each stage's fixed cost from its cost per image.

Runs `local_runner.py` (its defaults: DirectRunner, threads) on N1 and N2
images of `kermany-224` (one image per patient, half of each class), with
the smallest training there is (baseline_cnn, 32 px, one epoch) and
`--stop-after evaluate`, then reads every execution's start and end from the
run's ML Metadata. Prints per stage: seconds at N1 and at N2, the cost per
image between them and the fixed cost (time at N1 minus N1 times the cost
per image) and its share of the stage at N1.

  python -m bench.stages [--small 40] [--large 400] [--repeats 2]
"""
import argparse
import pathlib
import subprocess
import sys
import tempfile
import time
from typing import Dict

from contract import settings as config
from testing import images
from testing.support import (REPO, each_node_execution, read_only_store,
                             require_shared_data, run_cli)

ARGS = ['--profile', 'quick', '--image-size', '32', '--epochs', '1',
        '--architectures', 'baseline_cnn', '--batch-size', '16',
        '--stop-after', 'evaluate', '--min-auc', '0', '--min-recall', '0']


def stage_seconds(metadata_path) -> Dict[str, float]:
  """{node id: seconds from its execution's creation to its last update}."""
  return {node: (execution.last_update_time_since_epoch -
                 execution.create_time_since_epoch) / 1000
          for node, execution in each_node_execution(
              read_only_store(metadata_path))}


def run(count: int, root: pathlib.Path):
  """(per-stage seconds, whole-run seconds) of one pipeline run."""
  data, output = root / f'data-{count}', root / f'out-{count}'
  images.copy_patients(require_shared_data('kermany-224'), data,
                       count=count // 2)
  start = time.perf_counter()
  result = run_cli(['local_runner.py', '--data-dir', data, '--output-dir',
                    output, *ARGS], timeout=3600)
  wall = time.perf_counter() - start
  if result.returncode:
    raise SystemExit(result.stderr[-3000:])
  return stage_seconds(config.output_paths(str(output))['metadata_path']), wall


def _fastest(runs):
  """Per stage the fastest of several runs, and the fastest whole run."""
  return ({node: min(r[0][node] for r in runs if node in r[0])
           for node in runs[0][0]}, min(r[1] for r in runs))


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--small', type=int, default=40)
  parser.add_argument('--large', type=int, default=400)
  parser.add_argument('--repeats', type=int, default=2,
                      help='runs per size, interleaved; the fastest counts '
                      '(the first run of a session pays for cold caches)')
  args = parser.parse_args()
  runs = {args.small: [], args.large: []}
  with tempfile.TemporaryDirectory(dir=REPO.parent) as tmp:
    for repeat in range(args.repeats):
      for count in runs:
        runs[count].append(run(count, pathlib.Path(tmp) / str(repeat)))
  (small, small_wall), (large, large_wall) = (
      _fastest(runs[args.small]), _fastest(runs[args.large]))
  print(f'\n{args.small} and {args.large} images of kermany-224, '
        f'local_runner defaults, {" ".join(ARGS)}')
  print(f'whole run (process start to exit): {small_wall:.1f} s and '
        f'{large_wall:.1f} s\n')
  print(f'| stage | s at {args.small} | s at {args.large} | ms per image '
        f'| fixed s | fixed share at {args.small} |')
  print('|---|---|---|---|---|---|')
  for node in sorted(small, key=lambda n: -small[n]):
    a, b = small[node], large.get(node, float('nan'))
    per_image = max(0.0, (b - a) / (args.large - args.small))
    fixed = max(0.0, a - args.small * per_image)
    print(f'| {node} | {a:.2f} | {b:.2f} | {1000 * per_image:.1f} | '
          f'{fixed:.2f} | {fixed / a if a else 0:.0%} |')
  total_small = sum(small.values())
  print(f'\nsum of stages: {total_small:.1f} s and {sum(large.values()):.1f} s;'
        f' outside the stages (start-up, compilation, between stages): '
        f'{small_wall - total_small:.1f} s and '
        f'{large_wall - sum(large.values()):.1f} s')
  print(f'of which starting Python and importing TFX and TensorFlow: '
        f'{import_seconds():.1f} s')


def import_seconds() -> float:
  """Seconds for a fresh interpreter to import what local_runner imports."""
  start = time.perf_counter()
  subprocess.run([sys.executable, '-c', 'from pipeline import compilation, '
                  'pipeline; from tfx.orchestration.local import '
                  'local_dag_runner'], check=True,
                 capture_output=True, cwd=REPO)
  return time.perf_counter() - start


if __name__ == '__main__':
  main()
