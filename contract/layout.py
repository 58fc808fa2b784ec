"""Where things are: the file and property names that one stage writes and
another reads. Writers and readers both import them from here.
"""
import os

# --- the ingestion artifact ------------------------------------------------
INGESTION_REPORT_FILE = 'ingestion_report.json'
# Key of the ingestion report: [{'path', 'real_path'}] of every link leading
# outside the data root that ingestion followed (the images under it are
# ingested under their in-tree path; this says where they were read).
FOLLOWED_LINKS = 'followed_links'

# --- the Trainer's model_run folder ----------------------------------------
#   <architecture>/history.{json,csv}, checkpoints/, tensorboard/
#   comparison.{json,csv,md}, training_settings.json
HISTORY_STEM = 'history'  # .json and .csv
COMPARISON_STEM = 'comparison'  # .json, .csv and .md (also beside the model)
TABLE_EXTENSIONS = ('json', 'csv', 'md')
TRAINING_SETTINGS_FILE = 'training_settings.json'
CHECKPOINTS_DIR = 'checkpoints'
TENSORBOARD_DIR = 'tensorboard'


def history_file(model_run_dir: str, architecture: str) -> str:
  return os.path.join(model_run_dir, architecture, HISTORY_STEM + '.json')


def comparison_file(folder: str, extension: str = 'json') -> str:
  return os.path.join(folder, f'{COMPARISON_STEM}.{extension}')


# Why an architecture's training ended: a comparison row's `stopped_by`
# (trainer/race.py), and `race_leader` when the race stopped it.
STOPPED_BY_EPOCHS = 'epochs'  # every epoch ran
STOPPED_BY_PATIENCE = 'patience'  # early stopping: no better val AUC
STOPPED_BY_RACE = 'race'  # behind the leader
STOPPED_BY = (STOPPED_BY_EPOCHS, STOPPED_BY_PATIENCE, STOPPED_BY_RACE)


def stopped_by_text(row: dict) -> str:
  """A comparison row's reason in words, e.g. 'race: behind improved_cnn'."""
  why = row.get('stopped_by') or ''
  leader = row.get('race_leader')
  return f'{why}: behind {leader}' if why == STOPPED_BY_RACE and leader else why


# --- inside an exported SavedModel -----------------------------------------
SAVED_MODEL_FILE = 'saved_model.pb'
# Architecture, image size, threshold, comparison (trainer/signatures.py).
MODEL_INFO_FILE = 'assets.extra/model_info.json'
# Its keys: the operating threshold, and which data chose it
# (components/site_calibration): {THRESHOLD_CHOSEN_ON: one of
# THRESHOLD_CHOSEN_ON_TEXT's values, 'images', 'positives', 'negatives',
# 'sensitivity', 'specificity', 'target_sensitivity'}.
MODEL_INFO_THRESHOLD = 'threshold'
MODEL_INFO_THRESHOLD_SOURCE = 'threshold_source'
THRESHOLD_CHOSEN_ON = 'chosen_on'
THRESHOLD_CHOSEN_ON_TEXT = {'eval': 'eval split',
                            'external': 'external calibration half'}
# Statistics (TFDV DatasetFeatureStatisticsList, binary) of the train split
# this version was trained on, copied in by the Pusher: the baseline of the
# next run's drift check (components/drift_check).
TRAINING_STATISTICS_FILE = 'assets.extra/training_statistics.pb'
# TF Serving's warm-up requests (trainer/warmup.py): TF Serving replays this
# exact path, a TFRecord of PredictionLogs, when it loads a version.
WARMUP_REQUESTS_FILE = 'assets.extra/tf_serving_warmup_requests'

# --- the evaluation artifact -----------------------------------------------
DECISION_FILE = 'blessing_decision.json'
# Keys of TFMA results as components/evaluator/results.py reads them.
OVERALL = 'overall'
CANDIDATE, BASELINE = 'candidate', 'baseline'
# ModelBlessing custom property (1 or 0), set by TFX's Evaluator.
BLESSED = 'blessed'

# --- an external cohort -----------------------------------------------------
# Examples custom property: 1, or 0 when its data root was empty (Kubeflow
# compiles the branch in; an empty runtime value means "no external cohort").
COHORT_PRESENT = 'cohort_present'
# Examples custom property of the external cohort: where the threshold is
# chosen (contract.names THRESHOLD_SOURCES); 'external' when it was split
# into CALIBRATION_SPLIT and EXTERNAL_SPLIT. Also a key of its report.
THRESHOLD_FROM = 'threshold_from'
# In the external ingestion report: images also in the main data, dropped.
IN_MAIN_DATA = 'in_main_data'
# Inside the evaluation artifact: TFMA's output for the external cohort (the
# internal test split's stays at the artifact's root, as TFX writes it).
EXTERNAL_EVALUATION_DIR = 'external'
# The `cohort` of each check in DECISION_FILE.
COHORT_INTERNAL, COHORT_EXTERNAL = 'internal', 'external'

# --- the drift check (components/drift_check) -------------------------------
# In its output artifact: every compared feature, its distance, threshold and
# verdict, and what was done about it.
DRIFT_REPORT_FILE = 'drift_report.json'
# The report's `status`: compared and found drift or none, or not compared.
DRIFT_FOUND, DRIFT_NONE = 'drift', 'no_drift'
DRIFT_NO_BASELINE = 'no_deployed_model'
DRIFT_BASELINE_WITHOUT_STATISTICS = 'deployed_model_has_no_statistics'

# --- the push destination (TF Serving's model base path) -------------------
# Versions are numeric folders; a push is copied into a hidden staging
# folder first (TF Serving ignores non-numeric names).
STAGING_PREFIX = '.staging-'
# Custom properties of DeployedModel's Model artifact.
DEPLOYED_FOUND = 'deployed_model_found'  # 1 or 0
DEPLOYED_VERSION = 'deployed_version'
DEPLOYED_PATH = 'deployed_path'
# JSON list of {'version', 'path', 'reason'}: numeric entries above the
# baseline that do not load (components/deployed_model/versions.py).
DEPLOYED_SKIPPED = 'deployed_skipped'
# Custom properties TFX's Pusher sets on the PushedModel artifact.
PUSHED, PUSHED_VERSION, PUSHED_DESTINATION = (
    'pushed', 'pushed_version', 'pushed_destination')

# --- the run report ---------------------------------------------------------
REPORT_FILE = 'report.html'
LATEST_REPORT = 'latest'  # symlink to the newest report folder (+ .txt)

# --- the model card (components/model_card) ---------------------------------
# model_card.md and model_card.html, beside REPORT_FILE and, in a pushed
# version, in MODEL_CARD_DIR (beside model_info.json).
MODEL_CARD_STEM = 'model_card'
MODEL_CARD_EXTENSIONS = ('md', 'html')
MODEL_CARD_DIR = os.path.dirname(MODEL_INFO_FILE)


def model_card_file(folder: str, extension: str = 'md') -> str:
  return os.path.join(folder, f'{MODEL_CARD_STEM}.{extension}')
