"""The pediatric pneumonia TFX pipeline, as one pure function.

`create_pipeline` takes every environment-specific value as an argument;
runners (local_runner.py, kubeflow_runner.py) bind paths and choose the
orchestrator. Defaults and names live in pipeline/config.py.
"""
from typing import Any, Dict, List, Optional

from tfx import v1 as tfx
from tfx.dsl.components.base import executor_spec
from tfx.orchestration.data_types import RuntimeParameter

from components.anomaly_gate.component import AnomalyGate
from components.deployed_model.component import DeployedModel
from components.evaluator.component import OperatingPointEvaluator
from components.image_example_gen.component import ImageExampleGen
from components.pusher import executor as pusher_executor
from components.trainer.component import PneumoniaTrainer
from components.run_report.component import RunReport
from contract import settings as config


def create_pipeline(
    pipeline_name: str,
    pipeline_root: str,
    data_root: str,
    schema_path: str,
    serving_model_dir: str,
    reports_dir: str,
    stop_after: str = config.STAGES[-1],
    training: Optional[Dict[str, Any]] = None,
    blessing: Optional[Dict[str, float]] = None,
    enable_cache: bool = True,
    metadata_connection_config=None,
    beam_pipeline_args: Optional[List[str]] = None,
) -> tfx.dsl.Pipeline:
  """Builds the pipeline up to and including the stage `stop_after`.

  Args:
    pipeline_name: name of the pipeline (MLMD context, KFP pipeline name).
    pipeline_root: where artifacts are written.
    data_root: folder tree of NORMAL/PNEUMONIA images (local path or URI,
      or a RuntimeParameter).
    schema_path: the curated schema file to import.
    serving_model_dir: push destination; TF Serving watches its versions.
    reports_dir: where each run's report.html goes.
    stop_after: last stage to run, one of config.STAGES.
    training: Trainer settings (config.training_config()); default: the
      default profile. Values of config.RUNTIME_TRAINING_KEYS may be
      RuntimeParameters.
    blessing: min_auc, min_recall, max_auc_drop (config.EVALUATION_DEFAULTS);
      values or RuntimeParameters.
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

  training = dict(training or config.training_config())
  trainer = PneumoniaTrainer(
      examples=example_gen.outputs['examples'],
      schema=schema_gen.outputs['schema'],
      training={key: value for key, value in training.items()
                if not isinstance(value, RuntimeParameter)},
      runtime={key: training[key] for key in config.RUNTIME_TRAINING_KEYS
               if key in training}).with_id('Trainer')
  stages['train'] = [trainer]

  deployed = DeployedModel(push_destination=serving_model_dir)
  evaluator = OperatingPointEvaluator(
      examples=example_gen.outputs['examples'],
      model=trainer.outputs['model'],
      baseline_model=deployed.outputs['model'],
      schema=schema_gen.outputs['schema'],
      example_splits=['test'],
      gates=dict(config.EVALUATION_DEFAULTS, **(blessing or {}))).with_id(
          'Evaluator')
  stages['evaluate'] = [deployed, evaluator]

  pusher = tfx.components.Pusher(
      model=trainer.outputs['model'],
      model_blessing=evaluator.outputs['blessing'],
      push_destination=tfx.proto.PushDestination(
          filesystem=tfx.proto.PushDestination.Filesystem(
              base_directory=serving_model_dir)),
      custom_executor_spec=executor_spec.ExecutorClassSpec(
          pusher_executor.Executor))
  stages['push'] = [pusher]

  included = config.STAGES[:config.STAGES.index(stop_after) + 1]
  if 'train' in included:
    # Train only on data that passed validation.
    trainer.add_upstream_node(anomaly_gate)
  components = []
  for stage in included:
    components.extend(stages[stage])
  if 'evaluate' in included:
    pushed = 'push' in included
    components.append(RunReport(
        examples=example_gen.outputs['examples'], reports_dir=reports_dir,
        pipeline_name=pipeline_name, model_run=trainer.outputs['model_run'],
        model=trainer.outputs['model'],
        evaluation=evaluator.outputs['evaluation'],
        blessing=evaluator.outputs['blessing'],
        baseline_model=deployed.outputs['model'],
        pushed_model=pusher.outputs['pushed_model'] if pushed else None))
  return tfx.dsl.Pipeline(
      pipeline_name=pipeline_name,
      pipeline_root=pipeline_root,
      components=components,
      enable_cache=enable_cache,
      metadata_connection_config=metadata_connection_config,
      beam_pipeline_args=beam_pipeline_args or [],
  )


def compile_for_local(pipeline: tfx.dsl.Pipeline):
  """Pipeline IR for the LocalDagRunner, with config.NEVER_CACHED nodes'
  caching turned off (TFX only has a pipeline-wide switch)."""
  from tfx.dsl.compiler import compiler  # pylint: disable=g-import-not-at-top
  ir = compiler.Compiler().compile(pipeline)
  for node in ir.nodes:
    if node.pipeline_node.node_info.id in config.NEVER_CACHED:
      node.pipeline_node.execution_options.caching_options.enable_cache = False
  return ir
