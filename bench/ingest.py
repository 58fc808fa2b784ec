"""Ingestion throughput: ImageExampleGen's executor vs a bare Python loop.

Both read and decode every file of the full-resolution original sample
(../shared/data/kermany-original-sample, 240 files) with the same TensorFlow
decoder. The executor also hashes, deduplicates, splits by patient and writes
TFRecords plus the report, all in Beam; the loop does nothing else.

Beam's fixed costs (pipeline construction, worker start-up) weigh heavily on
240 images, so the same comparison also runs on a scaled tree: 8 copies of
the sample, each file made distinct (renamed patients, trailing bytes after
the JPEG end marker, pixels unchanged), and on all of kermany-224 (5,216
small files, where the cost per file dominates).

  python -m bench.ingest [--repeats 3] [--scale 8]
                         [--trees originals scaled kermany-224]

Prints seconds, images/s and the ratio executor/loop per DirectRunner mode
(goal >= 0.8), then the same on a local dask.distributed cluster (a scheduler
and 2 worker processes on loopback, testing/dask_cluster.py): the executor on
Beam's DaskRunner, and the bare loop spread over the workers with
Client.map, which shows what distribution alone costs on this machine.
"""
import argparse
import os
import pathlib
import statistics
import tempfile
import time

from absl import logging
import tensorflow as tf

from components.image_example_gen import component
from components.image_example_gen import inspection
from components.image_example_gen import walk
from contract import settings as config
from testing import dask_cluster
from testing.support import require_shared_data

MODES = (  # (label, workers, DirectRunner mode)
    ('DirectRunner multi_processing x2', 2, 'multi_processing'),
    ('DirectRunner multi_threading x2 (local_runner default)', 2,
     'multi_threading'),
    ('DirectRunner in_memory x1', 1, 'in_memory'),
)
DASK_WORKERS = 2
# The 240 originals, --scale copies of them (the same bytes padded, so no
# dedup), and all of kermany-224 (5,216 small files: per-file cost).
TREES = ('originals', 'scaled', 'kermany-224')


def read_decode(path: str):
  """One file of the bare loop; module-level so Dask workers import it."""
  with open(path, 'rb') as f:
    return inspection.decode_shape(f.read())


def bare_loop(paths) -> float:
  """Seconds to read and decode every file in one Python loop."""
  start = time.perf_counter()
  for path in paths:
    read_decode(path)
  return time.perf_counter() - start


def dask_loop(client, paths) -> float:
  """Seconds for the bare loop's work spread over the cluster's workers."""
  start = time.perf_counter()
  client.gather(client.map(read_decode, paths, pure=False))
  return time.perf_counter() - start


def run_executor(data_dir: str, workers: int, mode: str,
                 beam_args=None) -> float:
  """Seconds for one ImageExampleGen executor run, construction included;
  beam_args replace the DirectRunner's (workers, mode)."""
  with tempfile.TemporaryDirectory() as out:
    start = time.perf_counter()
    component.ingest_outside_pipeline(
        data_dir, out, beam_args or config.direct_runner_args(workers, mode))
    return time.perf_counter() - start


def scaled_copy(sample: pathlib.Path, target: pathlib.Path, copies: int):
  """`copies` distinct copies of every image of the sample under target."""
  for k in range(1, copies + 1):
    for path in sample.rglob('*.jpeg'):
      name = (path.name.replace('person', f'person{k}0000', 1)
              if path.name.startswith('person') else
              path.name.replace('IM-', f'IM-{k}', 1))
      copy = target / f'copy{k}' / path.parent.name / name
      copy.parent.mkdir(parents=True, exist_ok=True)
      copy.write_bytes(path.read_bytes() + b'\0' * k)


def _row(label, times, count, loop_rate):
  seconds = statistics.median(times)
  rate = count / seconds
  print(f'  {label:55s} {seconds:6.2f} s {rate:6.1f} img/s  '
        f'ratio {rate / loop_rate:4.2f}  (runs: '
        + ', '.join(f'{t:.1f}' for t in times) + ')')


def dask_rows(address, data_dir, paths, repeats, loop_rate):
  """The Dask rows: the executor on the DaskRunner, the loop on Client.map."""
  from dask import distributed  # pylint: disable=g-import-not-at-top
  label = f'DaskRunner, {DASK_WORKERS} dask workers'
  try:
    times = [run_executor(data_dir, 0, '', dask_cluster.dask_runner_args(
        address)) for _ in range(repeats)]
    _row(label, times, len(paths), loop_rate)
  except Exception as error:  # pylint: disable=broad-except
    # Beam 2.60's DaskRunner cannot run ingestion (tests/test_dask_runner.py).
    print(f'  {label:55s} fails: {type(error).__name__}: '
          f'{str(error).splitlines()[0][:80]}')
  with distributed.Client(address) as client:
    # Warm, as the bare loop is: the first tasks import TensorFlow.
    client.gather(client.map(read_decode, paths[:8], pure=False))
    times = [dask_loop(client, paths) for _ in range(repeats)]
  _row(f'bare loop on Client.map, {DASK_WORKERS} dask workers', times,
       len(paths), loop_rate)


def compare(data_dir: str, repeats: int, address: str):
  candidates, _ = walk.list_images(data_dir)
  paths = [c.path for c in candidates]
  megabytes = sum(os.path.getsize(p) for p in paths) / 1e6
  print(f'\n{len(paths)} images, {megabytes:.0f} MB ({data_dir})')
  bare_loop(paths[:5])  # warm the decoder
  loop = statistics.median(bare_loop(paths) for _ in range(repeats))
  loop_rate = len(paths) / loop
  print(f'  {"bare loop (read+decode, 1 process)":55s} {loop:6.2f} s '
        f'{loop_rate:6.1f} img/s')
  for label, workers, mode in MODES:
    times = [run_executor(data_dir, workers, mode) for _ in range(repeats)]
    _row(label, times, len(paths), loop_rate)
  dask_rows(address, data_dir, paths, repeats, loop_rate)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--repeats', type=int, default=3)
  parser.add_argument('--scale', type=int, default=8,
                      help='copies in the scaled tree')
  parser.add_argument('--trees', nargs='+', choices=TREES, default=TREES,
                      help='which trees to measure (default: all)')
  args = parser.parse_args()
  logging.set_verbosity(logging.WARNING)
  sample = require_shared_data('kermany-original-sample')
  print(f'{os.cpu_count()} CPUs, TF {tf.__version__}; median of '
        f'{args.repeats} runs; goal: ratio >= 0.8')
  start = time.perf_counter()
  with dask_cluster.local_cluster(DASK_WORKERS) as address:
    print(f'dask cluster ({DASK_WORKERS} workers, {address}) started in '
          f'{time.perf_counter() - start:.1f} s')
    if 'originals' in args.trees:
      compare(str(sample), args.repeats, address)
    if 'scaled' in args.trees:
      with tempfile.TemporaryDirectory() as scaled:
        scaled_copy(sample / 'chest_xray', pathlib.Path(scaled), args.scale)
        compare(scaled, args.repeats, address)
    if 'kermany-224' in args.trees:
      compare(str(require_shared_data('kermany-224')), args.repeats, address)


if __name__ == '__main__':
  main()
