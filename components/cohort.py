"""Whether an external cohort is there this run: one reading for every stage.

Kubeflow compiles the external branch in, and an empty data root stands for
"no cohort": ingestion then writes an empty split and sets
`layout.COHORT_PRESENT` 0 on the Examples artifact. The gate, calibration,
evaluation and report all ask here.
"""
from typing import List, Optional

from tfx import types
from tfx.types import artifact_utils

from contract import layout


def cohort_present(examples: types.Artifact) -> Optional[bool]:
  """`layout.COHORT_PRESENT` of an external cohort's Examples; None when the
  artifact has none (the main data, or a writer that knows no cohorts).

  Read whatever number type the orchestrator stored (MLMD keeps the int,
  Kubeflow's artifact metadata may hand back a float).
  """
  if not examples.has_custom_property(layout.COHORT_PRESENT):
    return None
  value = examples.mlmd_artifact.custom_properties[layout.COHORT_PRESENT]
  kind = value.WhichOneof('value')
  if kind in ('int_value', 'double_value'):
    return bool(getattr(value, kind))
  return bool(examples.get_json_value_custom_property(layout.COHORT_PRESENT))


def present_cohort(artifacts: Optional[List[types.Artifact]]
                   ) -> Optional[types.Artifact]:
  """The external Examples to use, or None when the channel was not wired
  (or resolved to nothing) or the cohort is absent this run. An artifact
  without the property counts as present."""
  if not artifacts:
    return None
  examples = artifact_utils.get_single_instance(list(artifacts))
  return None if cohort_present(examples) is False else examples
