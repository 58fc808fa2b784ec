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

# Nodes that must see the present, never a cached result: the deployed model
# changes between runs, and every run gets its own report.
NEVER_CACHED = ('DeployedModel', 'RunReport')

# --- evaluation (pipeline/evaluation.py) ---------------------------------------
EVALUATION_DEFAULTS = {
    'min_auc': 0.90,  # on the test split
    'min_recall': 0.90,  # sensitivity at the operating threshold
    'max_auc_drop': 0.01,  # vs the deployed model
}

# --- training (trainer/) -------------------------------------------------------
ARCHITECTURES = ('baseline_cnn', 'improved_cnn', 'resnet50')
TRAINER_RUN_FN = 'trainer.run.run_fn'

# `quick`: small images, few epochs (demos, CI). `full`: what a real run needs.
TRAINING_PROFILES = {
    'quick': {'image_size': 128, 'epochs': 3, 'batch_size': 32, 'patience': 2},
    'full': {'image_size': 224, 'epochs': 30, 'batch_size': 32, 'patience': 5},
}
DEFAULT_PROFILE = 'full'
# Training options a user changes per run: runtime parameters on Kubeflow.
RUNTIME_TRAINING_KEYS = ('epochs', 'architectures', 'image_size',
                         'batch_size', 'resnet_weights', 'target_sensitivity')
TRAINING_DEFAULTS = {
    'architectures': list(ARCHITECTURES),
    'resnet_weights': 'imagenet',  # or a weights file, or 'none'
    'learning_rate': 1e-3,
    'fine_tune_learning_rate': 1e-5,  # ResNet50 phase 2
    'resnet_head_epochs_fraction': 1 / 3,  # of `epochs`, at least 1
    'l2': 1e-4,
    'dropout': 0.3,
    'class_weights': True,  # weigh classes inversely to their frequency
    # The operating threshold is the highest one reaching this sensitivity
    # on the eval split (trainer/threshold.py).
    'target_sensitivity': 0.95,
    # Negative control for audits: train on permuted labels; the evaluation
    # must then refuse the model (tests/test_evaluate_push_pipeline.py).
    'shuffle_labels': False,
    'seed': 42,
    'log_every_seconds': 30.0,  # progress lines while training
}


def training_config(profile: str = DEFAULT_PROFILE, **overrides) -> dict:
  """Training settings: defaults, then the profile, then non-None overrides.

  The result is JSON-serialisable; it travels as the Trainer's custom_config.
  """
  if profile not in TRAINING_PROFILES:
    raise ValueError(f'unknown profile {profile!r}; choose from '
                     f'{sorted(TRAINING_PROFILES)}')
  settings = dict(TRAINING_DEFAULTS, profile=profile,
                  **TRAINING_PROFILES[profile])
  unknown = set(overrides) - set(settings)
  if unknown:
    raise ValueError(f'unknown training settings: {sorted(unknown)}')
  settings.update({k: v for k, v in overrides.items() if v is not None})
  settings['architectures'] = list(settings['architectures'])
  bad = [a for a in settings['architectures'] if a not in ARCHITECTURES]
  if bad or not settings['architectures']:
    raise ValueError(f'unknown architectures {bad}; choose from '
                     f'{", ".join(ARCHITECTURES)}')
  for key in ('image_size', 'epochs', 'batch_size'):
    if int(settings[key]) < (32 if key == 'image_size' else 1):
      raise ValueError(f'{key} is too small: {settings[key]}')
  return settings

# Beam DirectRunner defaults for local runs: one worker process per core.
DEFAULT_DIRECT_NUM_WORKERS = 2


def direct_runner_args(num_workers: int = DEFAULT_DIRECT_NUM_WORKERS,
                       mode: str = 'multi_processing',
                       setup_file: str = SETUP_FILE):
  """Beam args for the local DirectRunner.

  Args:
    num_workers: parallel workers; 1 always runs in-process (`in_memory`).
    mode: `multi_processing` (default: one process per worker, nothing
      shared), or `multi_threading` (threads of this process; cheaper to start
      and no data crosses processes, which bench/ingest measures).
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
