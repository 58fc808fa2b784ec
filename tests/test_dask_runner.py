"""Ingestion on Apache Beam's Dask runner, against the DirectRunner (issue 13).

The test starts a real dask.distributed cluster (a `dask scheduler` and two
`dask worker` processes on 127.0.0.1, ports picked by the OS), ingests 40 real
kermany-224 images once per runner, and compares the decompressed records of
every split and which split each image went to.

Beam 2.60's DaskRunner cannot run ingestion yet, so the comparison is a strict
xfail pinned to the first error it hits; the day a Beam upgrade makes it pass,
strict xfail fails the suite so that the mark is removed. What breaks, in the
order met (measured with this lock: dask/distributed 2024.8.0):
  1. DaskRunner.run_pipeline passes *every* non-default Beam option (runner,
     labels, extra_packages, direct_*, setup_file...) to
     distributed.Client(**options), which refuses them with an address:
     "ValueError: Unexpected keyword arguments: ['extra_packages', 'labels',
     'runner']". Any `--runner=` in beam_pipeline_args triggers it.
  2. DaskRunnerResult.wait_until_finish calls
     client.wait_for_workers(timeout=...) without n_workers, required since
     distributed 2023: "TypeError: Client.wait_for_workers() missing 1
     required positional argument: 'n_workers'".
  3. Its ParDo translation calls DoFn.process only: side inputs arrive as
     placeholders, so beam.io.Write's finalisation fails ("TypeError:
     'ArgumentPlaceholder' object is not iterable" in
     iobase._pre_finalize/_finalize_write); tagged outputs (beam.Partition,
     our Deduplicate's with_outputs) are not separated, and setup/
     start_bundle/finish_bundle never run.
"""
import os
import pathlib

import pytest

from components.image_example_gen import component
from contract import names as constants
from contract import settings as config
from testing import dask_cluster
from testing import images
from testing import support

SPLITS = constants.SPLIT_NAMES


@pytest.fixture(scope='module')
def cluster():
  """HOST:PORT of a scheduler with 2 worker processes, stopped afterwards."""
  with dask_cluster.local_cluster(workers=2) as address:
    yield address


@pytest.fixture(scope='module')
def data_dir(tmp_path_factory) -> pathlib.Path:
  """40 real images: one each of 20 NORMAL and 20 PNEUMONIA patients."""
  root = tmp_path_factory.mktemp('dask') / 'data'
  images.copy_patients(support.require_shared_data('kermany-224'), root,
                       count=20)
  return root


def _ingest(data_dir: pathlib.Path, out: pathlib.Path, beam_args):
  """(sorted records per split, {source path: split}) of one executor run."""
  examples = component.ingest_outside_pipeline(str(data_dir), str(out),
                                               beam_args)
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  records, split_of = {}, {}
  for split in SPLITS:
    records[split] = sorted(support.split_records(examples.uri, split))
    for record in records[split]:
      example = tf.train.Example.FromString(record)
      path = example.features.feature[
          constants.SOURCE_PATH_KEY].bytes_list.value[0].decode()
      split_of[path] = split
  return records, split_of


@pytest.mark.xfail(
    strict=True, raises=ValueError,
    reason='Beam 2.60 DaskRunner forwards all Beam options to '
    'distributed.Client (and lacks side inputs, tagged outputs and DoFn '
    'lifecycle): see the module docstring')
def test_ingestion_on_dask_is_byte_identical_to_direct(cluster, data_dir,
                                                       tmp_path):
  direct = _ingest(data_dir, tmp_path / 'direct',
                   config.direct_runner_args(1))
  assert len(direct[1]) == 40 and all(direct[0].values())
  dask = _ingest(data_dir, tmp_path / 'dask',
                 dask_cluster.dask_runner_args(cluster))
  assert dask[1] == direct[1]  # the split assignment
  for split in SPLITS:
    assert dask[0][split] == direct[0][split], split


def test_cluster_is_two_worker_processes_on_loopback(cluster):
  """The cluster the comparison runs on is what the README starts."""
  from dask import distributed  # pylint: disable=g-import-not-at-top
  with distributed.Client(cluster) as client:
    pids = client.run(os.getpid)
  assert len(pids) == 2 and os.getpid() not in pids.values()
  assert all(address.startswith('tcp://127.0.0.1:') for address in pids)
  assert cluster.startswith('127.0.0.1:')
