"""Names and defaults of the pipeline, in one place.

Runners bind environment-specific values (paths, Beam args) and pass them to
``pipeline.pipeline.create_pipeline``; everything else defaults from here.
"""
import os

PIPELINE_NAME = 'pediatric-pneumonia'

# Where `make run` reads images and writes everything it produces.
DEFAULT_DATA_DIR = 'data'
DEFAULT_OUTPUT_DIR = 'output'

# The Kaggle dataset (Kermany et al. 2018) fetched when DATA_DIR has no images.
KAGGLE_DATASET = 'paultimothymooney/chest-xray-pneumonia'

# The curated schema, imported (not inferred) by the pipeline.
SCHEMA_PATH = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'schemas',
    'schema.pbtxt')

# Pipeline stages in run order; `--stop-after STAGE` runs up to and including it.
STAGES = ('ingest', 'validate')

# Beam DirectRunner defaults for local runs: one worker process per core.
DEFAULT_DIRECT_NUM_WORKERS = 2


def direct_runner_args(num_workers: int = DEFAULT_DIRECT_NUM_WORKERS):
  """Beam args for the local DirectRunner (multi-process unless 1 worker)."""
  if num_workers <= 1:
    return ['--direct_num_workers=1', '--direct_running_mode=in_memory']
  return [f'--direct_num_workers={num_workers}',
          '--direct_running_mode=multi_processing']


def output_paths(output_dir: str):
  """Standard locations under OUTPUT_DIR."""
  return {
      'pipeline_root': os.path.join(output_dir, 'pipeline_root'),
      'metadata_path': os.path.join(output_dir, 'metadata', 'metadata.sqlite'),
      'serving_model_dir': os.path.join(output_dir, 'serving_model'),
      'reports_dir': os.path.join(output_dir, 'reports'),
  }
