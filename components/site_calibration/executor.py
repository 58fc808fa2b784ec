"""Executor of SiteCalibration: the operating threshold from the other site.

Thresholds do not travel between sites (issue 10). With threshold_from
'external' the external cohort arrives in two halves by patient
(components/image_example_gen: CALIBRATION_SPLIT and EXTERNAL_SPLIT). The
candidate SavedModel scores the calibration half through its own
`serving_examples` signature (plain tf.saved_model.load, no project code);
the threshold is chosen there by contract.operating_point.choose_threshold
(same rule and margin as the Trainer's on the eval split); the model's
`threshold` variable is set to it and the SavedModel re-saved with all its
signatures; `assets.extra/model_info.json` gets the new threshold and a
`threshold_source` block saying which data chose it and how many images it
used. The Evaluator, Pusher and RunReport read this output, so every
external metric is measured on the evaluation half only.

With threshold_from 'eval', or no cohort this run (layout.COHORT_PRESENT 0),
the candidate passes on unchanged (its files copied), model_info gaining
only the `threshold_source` block of the eval split.
"""
import json
import os
from typing import Any, Dict, List, Optional, Tuple

from absl import logging
import numpy as np
import tensorflow as tf
from tfx import types
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils
from tfx.utils import io_utils
from tfx.utils import path_utils

from components import cohort
from contract import layout
from contract import names as constants
from contract import operating_point
from contract import options

MODEL_KEY = 'model'
EXTERNAL_EXAMPLES_KEY = 'external_examples'
CALIBRATED_MODEL_KEY = 'calibrated_model'
THRESHOLD_FROM_KEY = 'threshold_from'
TARGET_SENSITIVITY_KEY = 'target_sensitivity'
# The Trainer's record of its eval-split point, kept beside the new one.
EVAL_OPERATING_POINT = 'eval_operating_point'
_BATCH = 32


def _default(name: str) -> Any:
  return options.TrainingSettings.__dataclass_fields__[name].default


def _serving_dir(model: types.Artifact) -> str:
  return path_utils.serving_model_path(
      model.uri, path_utils.is_old_model_artifact(model))


def calibration_files(examples: types.Artifact) -> List[str]:
  splits = artifact_utils.decode_split_names(examples.split_names)
  if constants.CALIBRATION_SPLIT not in splits:
    raise ValueError(
        f'threshold_from is external, but the external cohort {examples.uri} '
        f'has splits {splits}, no {constants.CALIBRATION_SPLIT!r} half: give '
        'ExternalImageExampleGen the same threshold_from as SiteCalibration.')
  files = sorted(tf.io.gfile.glob(os.path.join(artifact_utils.get_split_uri(
      [examples], constants.CALIBRATION_SPLIT), '*')))
  if not files:
    raise ValueError(f'the {constants.CALIBRATION_SPLIT} half of '
                     f'{examples.uri} has no files')
  return files


def _labels(records: List[bytes]) -> List[int]:
  return [tf.train.Example.FromString(r).features.feature[
      constants.LABEL_KEY].int64_list.value[0] for r in records]


def score(saved_model, files: List[str]) -> Tuple[np.ndarray, np.ndarray]:
  """(probabilities, labels) of every example in files, through the
  model's serving_examples signature, as the Evaluator and TF Serving see
  them."""
  serve = saved_model.signatures[constants.EXAMPLES_SIGNATURE]
  scores, labels = [], []
  dataset = tf.data.TFRecordDataset(files, compression_type='GZIP').batch(
      _BATCH)
  for batch in dataset:
    out = serve(**{constants.EXAMPLES_INPUT: batch})
    scores.append(out[constants.PROBABILITY_OUTPUT].numpy())
    labels.extend(_labels(list(batch.numpy())))
  return (np.concatenate(scores) if scores else np.zeros([0], np.float32),
          np.asarray(labels, np.int64))


def threshold_source(chosen_on: str, point: Dict[str, Any]
                     ) -> Dict[str, Any]:
  """model_info's `threshold_source` block from an OperatingPoint's dict."""
  positives, negatives = int(point['positives']), int(point['negatives'])
  return {layout.THRESHOLD_CHOSEN_ON:
              layout.THRESHOLD_CHOSEN_ON_TEXT[chosen_on],
          'images': positives + negatives, 'positives': positives,
          'negatives': negatives,
          'sensitivity': _number(point['sensitivity']),
          'specificity': _number(point['specificity']),
          'target_sensitivity': float(point['target_sensitivity']),
          'threshold': float(point['threshold'])}


def _number(value) -> Optional[float]:
  value = float(value)
  return None if np.isnan(value) else value  # JSON has no NaN


def _read_info(serving_dir: str) -> Dict[str, Any]:
  with tf.io.gfile.GFile(os.path.join(serving_dir,
                                      layout.MODEL_INFO_FILE)) as f:
    return json.load(f)


def _write_info(serving_dir: str, info: Dict[str, Any]) -> None:
  path = os.path.join(serving_dir, layout.MODEL_INFO_FILE)
  tf.io.gfile.makedirs(os.path.dirname(path))
  with tf.io.gfile.GFile(path, 'w') as f:
    json.dump(info, f, indent=1, sort_keys=True)


def _copy_beside(source_uri: str, target_uri: str, skip: str) -> None:
  """Copies what the model artifact holds beside its SavedModel folder."""
  tf.io.gfile.makedirs(target_uri)
  for name in tf.io.gfile.listdir(source_uri):
    name = name.rstrip('/')
    if name == skip:
      continue
    source, target = (os.path.join(source_uri, name),
                      os.path.join(target_uri, name))
    if tf.io.gfile.isdir(source):
      io_utils.copy_dir(source, target)
    else:
      tf.io.gfile.copy(source, target, overwrite=True)


def resave_with_threshold(source_dir: str, target_dir: str,
                          threshold: float) -> None:
  """The SavedModel at source_dir, its `threshold` variable set, saved to
  target_dir with every signature it has (the two serving ones, and
  `explain` where exported; assets.extra copied across)."""
  loaded = tf.saved_model.load(source_dir)
  loaded.threshold.assign(threshold)
  tf.saved_model.save(loaded, target_dir, signatures=dict(loaded.signatures))
  extra = os.path.join(source_dir, os.path.dirname(layout.MODEL_INFO_FILE))
  if tf.io.gfile.isdir(extra):
    io_utils.copy_dir(extra, os.path.join(
        target_dir, os.path.dirname(layout.MODEL_INFO_FILE)))


def check_resaved(target_dir: str, threshold: float, records: List[bytes],
                  expected: np.ndarray) -> None:
  """The re-saved model has the threshold, both signatures, and labels
  (serving_examples) at the threshold for the same probabilities."""
  loaded = tf.saved_model.load(target_dir)
  stored = float(loaded.threshold.numpy())
  if abs(stored - threshold) > 1e-6:
    raise RuntimeError(f're-saved threshold {stored}, expected {threshold}')
  missing = {constants.SERVING_SIGNATURE, constants.EXAMPLES_SIGNATURE} - set(
      loaded.signatures)
  if missing:
    raise RuntimeError(f're-saved model lacks signatures {sorted(missing)}')
  out = loaded.signatures[constants.EXAMPLES_SIGNATURE](
      **{constants.EXAMPLES_INPUT: tf.constant(records)})
  probability = out[constants.PROBABILITY_OUTPUT].numpy()
  labels = [v.decode() for v in out[constants.LABEL_OUTPUT].numpy()]
  if not np.allclose(probability, expected,
                     atol=operating_point.SERVING_TOLERANCE):
    raise RuntimeError('the re-saved model scores differently')
  want = [constants.LABEL_NAMES[int(p >= np.float32(threshold))]
          for p in probability]
  if labels != want:
    raise RuntimeError('the re-saved model labels at another threshold')


def _copy_custom_properties(source: types.Artifact,
                            target: types.Artifact) -> None:
  for key, value in source.mlmd_artifact.custom_properties.items():
    target.mlmd_artifact.custom_properties[key].CopyFrom(value)


class Executor(base_executor.BaseExecutor):
  """Chooses the threshold on the calibration half, or passes on."""

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]],
         exec_properties: Dict[str, Any]) -> None:
    candidate = artifact_utils.get_single_instance(input_dict[MODEL_KEY])
    output = artifact_utils.get_single_instance(
        output_dict[CALIBRATED_MODEL_KEY])
    source = (exec_properties.get(THRESHOLD_FROM_KEY)
              or _default(THRESHOLD_FROM_KEY))
    if source not in constants.THRESHOLD_SOURCES:
      raise ValueError(f'unknown threshold_from {source!r}; choose from '
                       f'{", ".join(constants.THRESHOLD_SOURCES)}')
    target = exec_properties.get(TARGET_SENSITIVITY_KEY)
    target = float(_default(TARGET_SENSITIVITY_KEY) if target in (None, '')
                   else target)
    external = cohort.present_cohort(input_dict.get(EXTERNAL_EXAMPLES_KEY))
    source_dir = _serving_dir(candidate)
    target_dir = path_utils.serving_model_path(output.uri)
    serving_name = os.path.relpath(source_dir, candidate.uri)  # Format-Serving
    _copy_custom_properties(candidate, output)
    info = _read_info(source_dir)

    if source == constants.THRESHOLD_FROM_EVAL or external is None:
      if source == constants.THRESHOLD_FROM_EXTERNAL:
        logging.warning('threshold_from is external but there is no external '
                        'cohort this run: the eval split\'s threshold stays.')
      _copy_beside(candidate.uri, output.uri, skip=serving_name)
      io_utils.copy_dir(source_dir, target_dir)
      point = info.get('operating_point')
      if point:
        info[layout.MODEL_INFO_THRESHOLD_SOURCE] = threshold_source(
            constants.THRESHOLD_FROM_EVAL, point)
      _write_info(target_dir, info)
      output.set_string_custom_property(THRESHOLD_FROM_KEY,
                                        constants.THRESHOLD_FROM_EVAL)
      output.set_float_custom_property(layout.MODEL_INFO_THRESHOLD,
                                       float(info['threshold']))
      logging.info('Threshold %.4f from the eval split passed on unchanged.',
                   float(info['threshold']))
      return

    files = calibration_files(external)
    loaded = tf.saved_model.load(source_dir)
    scores, labels = score(loaded, files)
    positives = int(np.sum(labels == constants.PNEUMONIA))
    if positives < operating_point.MIN_THRESHOLD_POSITIVES:
      raise ValueError(
          f'the calibration half holds {positives} PNEUMONIA images; at least '
          f'{operating_point.MIN_THRESHOLD_POSITIVES} are needed to choose an '
          'operating threshold (more external data, or --threshold-from eval)')
    point = operating_point.choose_threshold(
        scores, labels, target, margin=operating_point.SERVING_TOLERANCE)
    _copy_beside(candidate.uri, output.uri, skip=serving_name)
    resave_with_threshold(source_dir, target_dir, point.threshold)
    sample = [r.numpy() for r in tf.data.TFRecordDataset(
        files[:1], compression_type='GZIP').take(_BATCH)]
    check_resaved(target_dir, point.threshold, sample,
                  scores[:len(sample)])
    info[EVAL_OPERATING_POINT] = info.get('operating_point')
    info['operating_point'] = point._asdict()
    info[layout.MODEL_INFO_THRESHOLD] = float(point.threshold)
    info[layout.MODEL_INFO_THRESHOLD_SOURCE] = threshold_source(
        constants.THRESHOLD_FROM_EXTERNAL, point._asdict())
    _write_info(target_dir, info)
    output.set_string_custom_property(THRESHOLD_FROM_KEY,
                                      constants.THRESHOLD_FROM_EXTERNAL)
    output.set_float_custom_property(layout.MODEL_INFO_THRESHOLD,
                                     float(point.threshold))
    eval_threshold = (info[EVAL_OPERATING_POINT] or {}).get('threshold')
    logging.info(
        'Operating threshold %.4f chosen on the external calibration half '
        '(%d images: %d PNEUMONIA, %d NORMAL): sensitivity %.3f (target '
        '%.2f), specificity %.3f; the eval split had chosen %s. External '
        'metrics come from the other half only.', point.threshold,
        point.positives + point.negatives, point.positives, point.negatives,
        point.sensitivity, point.target_sensitivity, point.specificity,
        'n/a' if eval_threshold is None else f'{eval_threshold:.4f}')
