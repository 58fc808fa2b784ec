"""The external cohort of the Evaluator: whether there is one, where its
results go, and one blessing for both cohorts.

TFX's Evaluator judges one set of examples. The executor runs it once per
cohort: the internal `test` split into the evaluation artifact's root (as
TFX writes it, so every reader keeps working), the external cohort into
`<evaluation>/layout.EXTERNAL_EVALUATION_DIR` with a throw-away blessing.
The ModelBlessing the Pusher reads then gets the combined verdict here.
"""
import os
from typing import Any, Dict, List, Optional

import tensorflow as tf
from tfx import types
from tfx.components.evaluator import constants as tfx_constants
from tfx.types import artifact_utils
from tfx.types import standard_artifacts
from tfx.types import standard_component_specs as specs
from tfx.utils import io_utils

from components import cohort
from contract import layout
from contract import names


def external_examples(artifacts: Optional[List[types.Artifact]]
                      ) -> Optional[types.Artifact]:
  """The external Examples artifact to evaluate on, or None.

  None when the channel was not wired (or resolved to nothing) or the
  artifact says layout.COHORT_PRESENT == 0: Kubeflow compiles the branch in
  and an empty data root stands for "no external cohort". An artifact
  without the property was written by something that knows of no such
  convention, so its examples count.
  """
  examples = cohort.present_cohort(artifacts)
  if examples is None:
    return None
  split_names = artifact_utils.decode_split_names(examples.split_names)
  if names.EXTERNAL_SPLIT not in split_names:
    raise ValueError(
        f'the external cohort {examples.uri} has splits {split_names}, not '
        f'{names.EXTERNAL_SPLIT!r}')
  return examples


def external_outputs(evaluation: types.Artifact, blessing_uri: str
                     ) -> Dict[str, List[types.Artifact]]:
  """Output artifacts for TFX's Evaluator run on the external cohort:
  results inside the real evaluation, the blessing in `blessing_uri` (read
  and combined by the executor, never published)."""
  sub_evaluation = standard_artifacts.ModelEvaluation()
  sub_evaluation.uri = os.path.join(evaluation.uri,
                                    layout.EXTERNAL_EVALUATION_DIR)
  sub_blessing = standard_artifacts.ModelBlessing()
  sub_blessing.uri = blessing_uri
  return {specs.EVALUATION_KEY: [sub_evaluation],
          specs.BLESSING_KEY: [sub_blessing]}


def set_verdict(blessing: types.Artifact, blessed: bool) -> None:
  """Makes the ModelBlessing say `blessed`, as TFX's Evaluator writes it:
  the BLESSED or NOT_BLESSED marker file (the other one removed) and the
  `blessed` custom property."""
  files = {True: tfx_constants.BLESSED_FILE_NAME,
           False: tfx_constants.NOT_BLESSED_FILE_NAME}
  stale = os.path.join(blessing.uri, files[not blessed])
  if tf.io.gfile.exists(stale):
    tf.io.gfile.remove(stale)
  io_utils.write_string_file(os.path.join(blessing.uri, files[blessed]), '')
  blessing.set_int_custom_property(
      layout.BLESSED, tfx_constants.BLESSED_VALUE if blessed
      else tfx_constants.NOT_BLESSED_VALUE)


def combined(verdicts: List[Optional[bool]]) -> Optional[bool]:
  """Blessed only if every cohort is: False if any failed, None (unknown)
  if one could not be read and none failed."""
  if any(v is False for v in verdicts):
    return False
  if any(v is None for v in verdicts):
    return None
  return True


def summary(present: bool, blessed: Optional[bool], metrics: Dict,
            splits: List[str], folder: str) -> Dict[str, Any]:
  """The decision's entry for one cohort."""
  count = metrics.get((layout.OVERALL, layout.CANDIDATE, 'example_count'))
  return {'present': present, 'blessed': blessed,
          'examples': int(count) if count is not None else None,
          'splits': list(splits), 'evaluation': folder}


def absent() -> Dict[str, Any]:
  return {'present': False, 'blessed': None, 'examples': 0, 'splits': [],
          'evaluation': None,
          'note': 'no external cohort given: judged on the internal examples '
                  'alone'}
