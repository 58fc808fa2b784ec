"""Names, paths and stages of the pipeline, in one place.

Runners bind environment-specific values (paths, Beam args) and pass them to
``pipeline.pipeline.create_pipeline``; the per-run options (training,
blessing) are declared in contract/options.py.
"""
import os

PIPELINE_NAME = 'pediatric-pneumonia'

# Where `make run` reads images and writes everything it produces.
DEFAULT_DATA_DIR = 'data'
DEFAULT_OUTPUT_DIR = 'output'

# The Kaggle dataset (Kermany et al. 2018) fetched when DATA_DIR has no images.
KAGGLE_DATASET = 'paultimothymooney/chest-xray-pneumonia'

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The curated schema, imported (not inferred) by the pipeline.
SCHEMA_PATH = os.path.join(REPO_ROOT, 'schemas', 'schema.pbtxt')

# Packages our code for Beam workers on remote runners. Naming it also stops
# TFX from building a throw-away sdist of itself before every Beam stage
# (about a second each), which the DirectRunner never needs.
SETUP_FILE = os.path.join(REPO_ROOT, 'setup.py')

# Pipeline stages in run order; `--stop-after STAGE` runs up to and including it.
STAGE_HELP = {
    'ingest': 'images to tf.Examples split by patient, with a report',
    'validate': 'statistics and schema check; stops on anomalies',
    'train': 'the selected architectures; exports the best',
    'evaluate': 'TFMA on the test split against the deployed model; blesses '
                'or not; writes the run report',
    'push': 'a blessed model to OUTPUT_DIR/serving_model/<version>',
}
STAGES = tuple(STAGE_HELP)

TRAINER_RUN_FN = 'trainer.run.run_fn'

# Beam DirectRunner defaults for local runs: one worker thread per core.
# Threads, not processes: each worker process imports TensorFlow and TFX on
# every Beam stage, which bench/ingest shows costs more than it gains here.
DEFAULT_DIRECT_NUM_WORKERS = 2


def direct_runner_args(num_workers: int = DEFAULT_DIRECT_NUM_WORKERS,
                       mode: str = 'multi_threading',
                       setup_file: str = SETUP_FILE):
  """Beam args for the local DirectRunner.

  Args:
    num_workers: parallel workers; 1 always runs in-process (`in_memory`).
    mode: `multi_threading` (default: threads of this process; cheap to
      start and no data crosses processes, as bench/ingest measures), or
      `multi_processing` (one process per worker, nothing shared).
    setup_file: our setup.py as seen by the runner (inside the image on
      Kubeflow).
  """
  if num_workers <= 1:
    mode = 'in_memory'
  return [f'--direct_num_workers={max(num_workers, 1)}',
          f'--direct_running_mode={mode}', f'--setup_file={setup_file}']


def output_paths(output_dir: str):
  """Standard locations under OUTPUT_DIR."""
  return {
      'pipeline_root': os.path.join(output_dir, 'pipeline_root'),
      'metadata_path': os.path.join(output_dir, 'metadata', 'metadata.sqlite'),
      'serving_model_dir': os.path.join(output_dir, 'serving_model'),
      'reports_dir': os.path.join(output_dir, 'reports'),
  }
