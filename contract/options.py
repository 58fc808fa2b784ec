"""Every setting of a run, declared once: name, type, default, help, group,
and whether Kubeflow exposes it as a runtime parameter.

A setting is a field of a frozen dataclass (its group): `TrainingSettings`
(the Trainer) or `Gates` (the Evaluator's blessing). The field's metadata
says whether it is a command-line option (`cli`) and a per-run parameter
(`runtime`: an execution parameter of its component, hence a KFP runtime
parameter). From these declarations are generated:
  * argparse options (runners/cli.py),
  * the Trainer's and Evaluator's execution parameters (components/),
  * the KFP runtime parameters and their types (kubeflow_runner.py).
Adding an option is one field here plus its use.
"""
import dataclasses
import typing
from typing import Any, Dict, List, Optional, Tuple, Type

from contract import names as constants

ARCHITECTURES = ('baseline_cnn', 'improved_cnn', 'resnet50')
# The order they train in by default: a cheap, strong one first, so that it
# leads the race (trainer/race.py) and the others stop early when behind it.
DEFAULT_ARCHITECTURES = ('improved_cnn', 'baseline_cnn', 'resnet50')
# How the learning rate moves within a training phase (trainer/schedules.py).
LR_SCHEDULES = ('constant', 'cosine', 'plateau')
# Per-image intensity normalisation at the model's input (trainer/models.py).
INTENSITY_NORMALISATIONS = ('none', 'equalize', 'clahe')
# Named augmentation policies (trainer/augment_policies.py).
AUGMENTATION_POLICIES = ('anatomy', 'acquisition')
# How served probabilities are recalibrated on the eval split
# (trainer/calibration.py).
CALIBRATIONS = ('none', 'platt', 'temperature')
# What the drift check does when the new data drifts (components/drift_check).
ON_DRIFT_WARN, ON_DRIFT_STOP = ON_DRIFT_ACTIONS = ('warn', 'stop')


def option(default: Any, help: str, *, runtime: bool = False,  # pylint: disable=redefined-builtin
           cli: bool = True, metavar: Optional[str] = None) -> Any:
  """A setting users choose: on the command line, per run if `runtime`."""
  return dataclasses.field(default=default, metadata={
      'help': help, 'cli': cli, 'runtime': runtime, 'metavar': metavar})


def setting(default: Any, why: str) -> Any:
  """A setting compiled into the pipeline (changed in code, not per run)."""
  return option(default, why, cli=False)


def _check_positive(settings, *names: str, minimum: int = 1) -> None:
  for name in names:
    if int(getattr(settings, name)) < minimum:
      raise ValueError(f'{name} is too small: {getattr(settings, name)}')


@dataclasses.dataclass(frozen=True)
class TrainingSettings:
  """What the Trainer does. Defaults are the `full` profile."""
  GROUP = ('training', 'The profile sets defaults; each option overrides it.')

  architectures: Tuple[str, ...] = option(
      DEFAULT_ARCHITECTURES, 'comma-separated, from ' +
      ','.join(ARCHITECTURES) + ', trained in this order; the best on '
      'validation AUC is exported',
      runtime=True)
  image_size: int = option(224, 'side of the square model input in pixels',
                           runtime=True)
  epochs: int = option(30, 'maximum epochs per architecture (early stopping '
                       'on validation AUC may stop sooner)', runtime=True)
  batch_size: int = option(32, 'images per training step', runtime=True)
  resnet_weights: str = option(
      'imagenet', 'ResNet50 initial weights: imagenet (from the Keras cache '
      'or downloaded), a local weights file, or none (random; smoke tests)',
      runtime=True, metavar='imagenet|PATH|none')
  # trainer/threshold.py
  target_sensitivity: float = option(
      0.95, 'the operating threshold is the highest one reaching this '
      'sensitivity on the eval split', runtime=True)
  # components/site_calibration; contract/operating_point.py
  threshold_from: str = option(
      'eval', 'where the operating threshold is chosen: eval (the eval '
      'split) or external (the calibration half of the external cohort; '
      'external metrics then come from the other half)', runtime=True)
  # components/drift_check; thresholds: schemas/schema.pbtxt
  on_drift: str = option(
      'warn', 'when the training data drifts from the data the deployed '
      'model was trained on: warn (report it and go on) or stop (the run '
      'stops before training)', runtime=True)
  shuffle_labels: bool = option(
      False, 'negative control for audits: train on permuted labels (the '
      'evaluation must then refuse the model)')
  patience: int = setting(5, 'early-stopping patience, in epochs')
  # trainer/race.py
  race_after_epochs: int = option(
      2, 'from this epoch on, an architecture stops when its best validation '
      'AUC is below that of the best architecture trained before it by the '
      'same epoch (it is not expected to be selected); 0 trains every '
      'architecture to the end', runtime=True)
  learning_rate: float = setting(1e-3, 'Adam learning rate')
  # trainer/schedules.py: within each phase, from its learning rate.
  # bench/generalisation --quick (3 seeds): cosine did not beat constant by
  # more than the spread, so the default stays constant (README).
  lr_schedule: str = setting(
      'constant', 'how the learning rate moves within a phase: constant (the '
      'recipe before issue 10), cosine (linear warm-up, then cosine decay to '
      '`min_learning_rate_fraction` at the last epoch of the phase), plateau '
      '(warm-up, then x`plateau_factor` after `plateau_patience` epochs '
      'without a better val AUC). A constant 1e-3 let improved_cnn fall from '
      'val AUC 0.99 to 0.62 between two epochs (issue 10)')
  warmup_epochs: float = setting(
      1.0, 'linear warm-up from lr/steps to lr over this many epochs at the '
      'start of every phase (cosine and plateau; at most half the phase): '
      'Adam\'s first steps on freshly initialised BatchNorm layers are the '
      'largest')
  min_learning_rate_fraction: float = setting(
      0.01, 'cosine: the last step runs at this fraction of the phase '
      'learning rate; plateau: the lowest it is reduced to')
  plateau_factor: float = setting(0.3, 'plateau: the reduction factor')
  plateau_patience: int = setting(
      1, 'plateau: epochs without a better val AUC before a reduction')
  # trainer/batchnorm.py
  batchnorm_sample_images: int = setting(
      0, 'before every validation (and checkpoint), BatchNorm layers that '
      'learn their statistics get the mean batch statistics of this many '
      'unaugmented training images under the current weights, instead of '
      'Keras\' moving averages of past steps, which lag the weights and '
      'made val AUC swing between epochs at 224 px (bench/batchnorm.py); '
      '0 = the moving averages. Off by default: with it ResNet50 from '
      'random weights leads the race and the full profile outgrows its time '
      'budget (README); 512 is what bench/generalisation measured')
  deterministic: bool = setting(
      True, 'tf.config.experimental.enable_op_determinism() while training, '
      'with every seed set: two runs with the same settings on the same '
      'machine and software give the same weights (trainer/run_test.py). It '
      'does not make runs repeat across CPUs or thread counts')
  fine_tune_learning_rate: float = setting(1e-5, 'ResNet50 phase 2')
  from_scratch_learning_rate: float = setting(
      1e-3, 'ResNet50 from random weights (resnet_weights none): one phase '
      'in which every layer trains from epoch 1 at this learning rate; a '
      'frozen random backbone would learn nothing (issue 10)')
  cache_head_features: bool = setting(
      True, 'pretrained ResNet50: the head phase trains on backbone features '
      'computed once from the unaugmented images, not recomputed every epoch '
      '(trainer/head_features.py; the fine-tuning phase still augments)')
  resnet_head_epochs_fraction: float = setting(
      1 / 3, 'share of `epochs` spent on the ResNet50 head, at least 1')
  intensity_normalisation: str = setting(
      'none', 'none, equalize (per-image histogram equalisation, '
      'trainer/preprocessing.equalize_histogram) or clahe (contrast-limited '
      'adaptive equalisation in 8x8 regions, preprocessing.clahe) as the '
      'first layer of the model, after augmentation, so training, evaluation '
      'and serving all see it; meant to make another cohort\'s exposure and '
      'contrast look like ours (issue 10)')
  border_crop: float = setting(
      0.0, 'fraction of the side cut from each edge of the preprocessed '
      'image (then resized back), before the intensity normalisation, inside '
      'the model: markers, text and collimation differ between sites '
      '(issue 10); 0 = none')
  augmentation_policy: str = setting(
      'anatomy', 'anatomy (positioning and exposure; NORMAL, the minority '
      'class, augmented more) or acquisition (anatomy\'s geometry plus '
      'site differences the same for both classes: mild resized crop, '
      'stronger contrast/gamma, blur or sharpen, JPEG re-compression; '
      'issue 10)')
  label_smoothing: float = setting(
      0.0, 'of the binary cross-entropy: targets 0/1 become s/2 and 1 - s/2, '
      'so the model is not pushed to certainty on one cohort (issue 10)')
  ensemble: bool = setting(
      True, 'with two or more architectures, also try the mean probability '
      'of all of them (one SavedModel, the same contract; '
      'trainer/ensemble.py) and ship it when its eval-split AUC beats the '
      'best single architecture\'s (issue 10)')
  test_time_views: int = setting(
      1, 'images scored as this many views (the image, then crops of it: '
      'trainer/ensemble.VIEW_BOXES, at most 5), their probabilities '
      'averaged, in the serving graph and for the threshold alike '
      '(test-time augmentation; issue 10)')
  calibration: str = setting(
      'none', 'none, platt (slope and intercept on the logit) or temperature '
      '(slope only), fitted on the eval split so that '
      'pneumonia_probability reads as a risk at that split\'s prevalence; '
      'the threshold is chosen after it (trainer/calibration.py; issue 10)')
  l2: float = setting(1e-4, 'weight decay of improved_cnn')
  dropout: float = setting(0.3, 'of improved_cnn and the ResNet50 head')
  class_weights: bool = setting(
      True, 'weigh classes inversely to their frequency')
  seed: int = setting(42, 'weights, shuffles and augmentation draws')
  log_every_seconds: float = setting(30.0, 'progress lines while training')
  profile: str = setting('full', 'the profile these settings started from')

  def __post_init__(self):
    names = tuple(self.architectures)
    object.__setattr__(self, 'architectures', names)
    bad = [a for a in names if a not in ARCHITECTURES]
    if bad or not names:
      raise ValueError(f'unknown architectures {bad}; choose from '
                       f'{", ".join(ARCHITECTURES)}')
    _check_positive(self, 'image_size', minimum=32)
    _check_positive(self, 'epochs', 'batch_size')
    _check_positive(self, 'race_after_epochs', 'batchnorm_sample_images',
                    minimum=0)
    if self.lr_schedule not in LR_SCHEDULES:
      raise ValueError(f'unknown lr_schedule {self.lr_schedule!r}; choose '
                       f'from {", ".join(LR_SCHEDULES)}')
    if self.intensity_normalisation not in INTENSITY_NORMALISATIONS:
      raise ValueError(f'unknown intensity_normalisation '
                       f'{self.intensity_normalisation!r}; choose from '
                       f'{", ".join(INTENSITY_NORMALISATIONS)}')
    if self.augmentation_policy not in AUGMENTATION_POLICIES:
      raise ValueError(f'unknown augmentation_policy '
                       f'{self.augmentation_policy!r}; choose from '
                       f'{", ".join(AUGMENTATION_POLICIES)}')
    if not 0.0 <= self.border_crop < 0.5:
      raise ValueError(f'border_crop must be in [0, 0.5), got '
                       f'{self.border_crop}')
    _check_positive(self, 'test_time_views')
    if self.calibration not in CALIBRATIONS:
      raise ValueError(f'unknown calibration {self.calibration!r}; choose '
                       f'from {", ".join(CALIBRATIONS)}')
    if not 0 <= self.label_smoothing < 1:
      raise ValueError(f'label_smoothing must be in [0, 1): '
                       f'{self.label_smoothing}')
    if self.warmup_epochs < 0:
      raise ValueError(f'warmup_epochs is negative: {self.warmup_epochs}')
    if not 0 < self.min_learning_rate_fraction <= 1:
      raise ValueError('min_learning_rate_fraction must be in (0, 1]: '
                       f'{self.min_learning_rate_fraction}')
    if not 0 < self.plateau_factor < 1:
      raise ValueError(f'plateau_factor must be in (0, 1): '
                       f'{self.plateau_factor}')
    if self.on_drift not in ON_DRIFT_ACTIONS:
      raise ValueError(f'unknown on_drift {self.on_drift!r}; choose from '
                       f'{", ".join(ON_DRIFT_ACTIONS)}')
    if self.threshold_from not in constants.THRESHOLD_SOURCES:
      raise ValueError(f'unknown threshold_from {self.threshold_from!r}; '
                       f'choose from '
                       f'{", ".join(constants.THRESHOLD_SOURCES)}')

  def to_dict(self) -> Dict[str, Any]:
    """JSON-ready (it travels as the Trainer's custom_config)."""
    values = dataclasses.asdict(self)
    values['architectures'] = list(self.architectures)
    return values

  @classmethod
  def from_dict(cls, values: Dict[str, Any]) -> 'TrainingSettings':
    unknown = set(values) - {f.name for f in dataclasses.fields(cls)}
    if unknown:
      raise ValueError(f'unknown training settings: {sorted(unknown)}')
    return cls(**values)


# `quick`: small images, few epochs (demos, CI). `full`: the defaults above.
PROFILES = {
    'quick': {'image_size': 128, 'epochs': 3, 'patience': 2},
    'full': {},
}
DEFAULT_PROFILE = 'full'


def training_settings(profile: str = DEFAULT_PROFILE,
                      **overrides) -> TrainingSettings:
  """Defaults, then the profile, then the overrides that are not None."""
  if profile not in PROFILES:
    raise ValueError(f'unknown profile {profile!r}; choose from '
                     f'{sorted(PROFILES)}')
  values = dict(PROFILES[profile], profile=profile)
  values.update({k: v for k, v in overrides.items() if v is not None})
  return TrainingSettings.from_dict(values)


@dataclasses.dataclass(frozen=True)
class Gates:
  """What it takes to bless a model (components/evaluator)."""
  GROUP = ('blessing', 'A model is pushed only if it passes all of these on '
           'the test split (and, when one is given, on the external cohort).')

  min_auc: float = option(0.90, 'lowest AUC on the test split',
                          runtime=True)
  min_recall: float = option(0.90, 'sensitivity at the operating threshold',
                             runtime=True)
  max_auc_drop: float = option(
      0.01, 'largest AUC drop allowed against the deployed model (on each '
      'cohort evaluated)', runtime=True)
  min_external_auc: float = option(
      0.90, 'lowest AUC on the external cohort, when one is given',
      runtime=True)
  min_external_recall: float = option(
      0.90, 'sensitivity on the external cohort at the operating threshold',
      runtime=True)


@dataclasses.dataclass(frozen=True)
class ImageLimits:
  """What an image file may be: ingestion rejects, predict.py refuses and the
  serving graph (baked in at export) answers INVALID_ARGUMENT beyond these.

  Settings, not per-run options: the three must agree, and the serving
  graph's copy is fixed when the model is exported, so a per-run value could
  only make them disagree. Not in GROUPS (no CLI flag, no KFP parameter).
  """
  max_file_bytes: int = setting(
      64 * 2**20, 'larger files are rejected from their size before reading '
      '(the largest original in kermany-original-sample is 2.3 MB)')
  max_pixels: int = setting(
      50_000_000, 'height x width declared in the header, checked before '
      'decoding: a 1.5 MB PNG can declare 23000 x 23000 and decode into '
      'gigabytes (TensorFlow\'s own cap is 2^29; originals reach 6.6 Mpx)')
  min_side: int = setting(
      64, 'smaller images are rejected: a 1x1 image carries no X-ray, yet '
      'the model would answer for it')

  def __post_init__(self):
    _check_positive(self, 'max_file_bytes', 'max_pixels', 'min_side')


# --- what the generators read -------------------------------------------------
GROUPS = (TrainingSettings, Gates)


def cli_fields(group: Type) -> List[dataclasses.Field]:
  return [f for f in dataclasses.fields(group) if f.metadata.get('cli')]


def runtime_fields(group: Type) -> List[dataclasses.Field]:
  return [f for f in dataclasses.fields(group) if f.metadata.get('runtime')]


def runtime_names(group: Type) -> Tuple[str, ...]:
  return tuple(f.name for f in runtime_fields(group))


def is_list(field: dataclasses.Field) -> bool:
  return typing.get_origin(field.type) is tuple


def parameter_type(field: dataclasses.Field) -> type:
  """The type of the field as an execution/runtime parameter (a list
  travels as comma-separated text)."""
  return str if is_list(field) else field.type


def parse_list(text: str) -> Tuple[str, ...]:
  return tuple(name.strip() for name in text.split(',') if name.strip())


def to_parameter(field: dataclasses.Field, value: Any) -> Any:
  """A setting's value as the parameter carries it (RuntimeParameters and
  other placeholders pass through)."""
  if isinstance(value, (list, tuple)):
    return ','.join(value)
  if isinstance(value, (bool, int, float, str)):
    return parameter_type(field)(value)
  return value


def from_parameter(field: dataclasses.Field, value: Any) -> Any:
  """A parameter's value as the setting; None when empty (keep default)."""
  if value is None or value == '':
    return None
  if is_list(field) and isinstance(value, str):
    return parse_list(value)
  return parameter_type(field)(value)


def runtime_values(settings: Any) -> Dict[str, Any]:
  """{name: parameter value} of a group instance's runtime fields."""
  return {f.name: to_parameter(f, getattr(settings, f.name))
          for f in runtime_fields(type(settings))}
