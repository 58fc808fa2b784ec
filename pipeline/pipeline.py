"""The pediatric pneumonia TFX pipeline, as one pure function.

`create_pipeline` takes every environment-specific value as an argument;
runners (local_runner.py, kubeflow_runner.py) bind paths and choose the
orchestrator. Defaults and names live in pipeline/config.py.
"""
from typing import Any, Dict, List, Optional

from tfx import v1 as tfx

from components.anomaly_gate.component import AnomalyGate
from components.image_example_gen.component import ImageExampleGen
from pipeline import config


def create_pipeline(
    pipeline_name: str,
    pipeline_root: str,
    data_root: str,
    schema_path: str,
    stop_after: str = config.STAGES[-1],
    training: Optional[Dict[str, Any]] = None,
    enable_cache: bool = True,
    metadata_connection_config=None,
    beam_pipeline_args: Optional[List[str]] = None,
) -> tfx.dsl.Pipeline:
  """Builds the pipeline up to and including the stage `stop_after`.

  Args:
    pipeline_name: name of the pipeline (MLMD context, KFP pipeline name).
    pipeline_root: where artifacts are written.
    data_root: folder tree of NORMAL/PNEUMONIA images (local path or URI).
    schema_path: the curated schema file to import.
    stop_after: last stage to run, one of config.STAGES.
    training: Trainer settings (config.training_config()); default: the
      default profile.
    enable_cache: reuse results of unchanged inputs.
    metadata_connection_config: MLMD connection (None: orchestrator default).
    beam_pipeline_args: passed to every Beam-powered component.
  """
  if stop_after not in config.STAGES:
    raise ValueError(f'stop_after must be one of {config.STAGES}, '
                     f'got {stop_after!r}')
  stages = {}

  example_gen = ImageExampleGen(input_base=data_root)
  stages['ingest'] = [example_gen]

  schema_gen = tfx.components.ImportSchemaGen(schema_file=schema_path)
  statistics_gen = tfx.components.StatisticsGen(
      examples=example_gen.outputs['examples'],
      schema=schema_gen.outputs['schema'])
  example_validator = tfx.components.ExampleValidator(
      statistics=statistics_gen.outputs['statistics'],
      schema=schema_gen.outputs['schema'])
  anomaly_gate = AnomalyGate(anomalies=example_validator.outputs['anomalies'])
  stages['validate'] = [schema_gen, statistics_gen, example_validator,
                        anomaly_gate]

  trainer = tfx.components.Trainer(
      run_fn=config.TRAINER_RUN_FN,
      examples=example_gen.outputs['examples'],
      schema=schema_gen.outputs['schema'],
      train_args=tfx.proto.TrainArgs(splits=['train']),
      eval_args=tfx.proto.EvalArgs(splits=['eval']),
      custom_config={'training': training or config.training_config()})
  # Train only on data that passed validation.
  trainer.add_upstream_node(anomaly_gate)
  stages['train'] = [trainer]

  components = []
  for stage in config.STAGES[:config.STAGES.index(stop_after) + 1]:
    components.extend(stages[stage])
  return tfx.dsl.Pipeline(
      pipeline_name=pipeline_name,
      pipeline_root=pipeline_root,
      components=components,
      enable_cache=enable_cache,
      metadata_connection_config=metadata_connection_config,
      beam_pipeline_args=beam_pipeline_args or [],
  )
