"""The pediatric pneumonia TFX pipeline, as one pure function.

`create_pipeline` takes every environment-specific value as an argument;
runners (local_runner.py, kubeflow_runner.py) bind paths and choose the
orchestrator. Names and stages live in contract/settings.py, the per-run
options in contract/options.py; compilation for an orchestrator is in
pipeline/compilation.py.
"""
from typing import Any, Dict, List, Optional

# Not `from tfx import v1`: that also imports TFX's Google Cloud extensions
# (aiplatform), ~11 s per process start (bench/stages).
from tfx.components import ExampleValidator
from tfx.components.schema_gen.import_schema_gen.component import ImportSchemaGen
from tfx.components import StatisticsGen
from tfx.orchestration import pipeline as tfx_pipeline
from tfx.proto import pusher_pb2

from components.anomaly_gate.component import AnomalyGate
from components.deployed_model.component import DeployedModel
from components.drift_check.component import DriftCheck
from components.evaluator.component import OperatingPointEvaluator
from components.image_example_gen.component import ExternalImageExampleGen
from components.image_example_gen.component import ImageExampleGen
from components.pusher.component import Pusher
from components.trainer.component import PneumoniaTrainer
from components.run_report.component import RunReport
from components.site_calibration.component import SiteCalibration
from contract import options
from contract import settings as config


def _validation(examples, schema, prefix: str = '') -> list:
  """Statistics, schema check and the gate that stops the run on anomalies;
  the gate also sees the examples so that it knows an absent cohort."""
  statistics = StatisticsGen(
      examples=examples, schema=schema).with_id(prefix + 'StatisticsGen')
  validator = ExampleValidator(
      statistics=statistics.outputs['statistics'], schema=schema).with_id(
          prefix + 'ExampleValidator')
  gate = AnomalyGate(anomalies=validator.outputs['anomalies'],
                     examples=examples if prefix else None).with_id(
                         prefix + 'AnomalyGate')
  return [statistics, validator, gate]


def _of_group(runtime: Dict[str, Any], group) -> Dict[str, Any]:
  names = options.runtime_names(group)
  return {name: value for name, value in runtime.items() if name in names}


def create_pipeline(
    pipeline_name: str,
    pipeline_root: str,
    data_root: str,
    schema_path: str,
    serving_model_dir: str,
    reports_dir: str,
    external_data_root: Optional[Any] = None,
    stop_after: str = config.STAGES[-1],
    training: Optional[options.TrainingSettings] = None,
    blessing: Optional[options.Gates] = None,
    runtime: Optional[Dict[str, Any]] = None,
    enable_cache: bool = True,
    metadata_connection_config=None,
    beam_pipeline_args: Optional[List[str]] = None,
) -> tfx_pipeline.Pipeline:
  """Builds the pipeline up to and including the stage `stop_after`.

  Args:
    pipeline_name: name of the pipeline (MLMD context, KFP pipeline name).
    pipeline_root: where artifacts are written.
    data_root: folder tree of NORMAL/PNEUMONIA images (local path or URI,
      or a RuntimeParameter).
    schema_path: the curated schema file to import.
    serving_model_dir: push destination; TF Serving watches its versions.
    reports_dir: where each run's report.html goes.
    external_data_root: an external cohort's image tree (path, URI or
      RuntimeParameter; '' = none this run), ingested apart, validated, and
      evaluated and gated on, never trained on; None: no such branch.
    stop_after: last stage to run, one of config.STAGES.
    training: Trainer settings; default: the default profile.
    blessing: the Evaluator's gates; default: options.Gates().
    runtime: RuntimeParameters replacing runtime options of `training` or
      `blessing` by name (Kubeflow); their compiled values are the defaults.
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
  schema_gen = ImportSchemaGen(schema_file=schema_path)
  stages['validate'] = [schema_gen] + _validation(
      example_gen.outputs['examples'], schema_gen.outputs['schema'])
  statistics = stages['validate'][1].outputs['statistics']
  gates = [stages['validate'][-1]]

  runtime = dict(runtime or {})
  unknown = set(runtime).difference(
      *(options.runtime_names(group) for group in options.GROUPS))
  if unknown:
    raise ValueError(f'not runtime options: {sorted(unknown)}')
  training = training or options.training_settings()
  # Where the threshold is chosen: one value (or RuntimeParameter) for the
  # external ingestion (its halves) and SiteCalibration.
  threshold_from = runtime.get('threshold_from', training.threshold_from)

  # The served model, if any: the drift check's and the Evaluator's
  # baseline. Drift is checked before training, so it can stop the run.
  deployed = DeployedModel(push_destination=serving_model_dir)
  drift = DriftCheck(
      statistics=statistics, schema=schema_gen.outputs['schema'],
      baseline_model=deployed.outputs['model'],
      on_drift=runtime.get('on_drift', training.on_drift)).with_id(
          'DriftCheck')
  stages['validate'] += [deployed, drift]
  gates.append(drift)

  external = None  # the external cohort's examples
  if external_data_root is not None:
    external_gen = ExternalImageExampleGen(
        input_base=external_data_root,
        reference_examples=example_gen.outputs['examples'],
        threshold_from=threshold_from).with_id('ExternalExampleGen')
    external = external_gen.outputs['examples']
    stages['ingest'].append(external_gen)
    external_validation = _validation(external, schema_gen.outputs['schema'],
                                      prefix='External')
    stages['validate'] += external_validation
    gates.append(external_validation[-1])

  trainer = PneumoniaTrainer(
      examples=example_gen.outputs['examples'],
      schema=schema_gen.outputs['schema'],
      training=training,
      runtime=_of_group(runtime, options.TrainingSettings)).with_id('Trainer')
  stages['train'] = [trainer]
  model = trainer.outputs['model']
  if external is not None:
    # The threshold from the external cohort's calibration half, or the
    # Trainer's passed on; everything downstream reads this model.
    calibration = SiteCalibration(
        model=trainer.outputs['model'], external_examples=external,
        threshold_from=threshold_from,
        target_sensitivity=runtime.get('target_sensitivity',
                                       training.target_sensitivity)).with_id(
                                           'SiteCalibration')
    stages['train'].append(calibration)
    model = calibration.outputs['calibrated_model']

  evaluator = OperatingPointEvaluator(
      examples=example_gen.outputs['examples'],
      model=model,
      baseline_model=deployed.outputs['model'],
      schema=schema_gen.outputs['schema'],
      example_splits=['test'],
      gates=blessing or options.Gates(),
      runtime=_of_group(runtime, options.Gates),
      external_examples=external).with_id('Evaluator')
  stages['evaluate'] = [evaluator]

  # Also reads what the pushed version's model card says.
  pusher = Pusher(
      model=model,
      model_blessing=evaluator.outputs['blessing'],
      push_destination=pusher_pb2.PushDestination(
          filesystem=pusher_pb2.PushDestination.Filesystem(
              base_directory=serving_model_dir)),
      evaluation=evaluator.outputs['evaluation'],
      examples=example_gen.outputs['examples'],
      external_examples=external, statistics=statistics).with_id('Pusher')
  stages['push'] = [pusher]

  included = config.STAGES[:config.STAGES.index(stop_after) + 1]
  if 'train' in included:
    # Train only once all data passed validation (the external cohort too:
    # bad evaluation data should stop the run before hours of training).
    for gate in gates:
      trainer.add_upstream_node(gate)
  components = []
  for stage in included:
    components.extend(stages[stage])
  if 'evaluate' in included:
    pushed = 'push' in included
    components.append(RunReport(
        examples=example_gen.outputs['examples'], reports_dir=reports_dir,
        pipeline_name=pipeline_name, model_run=trainer.outputs['model_run'],
        model=model,
        evaluation=evaluator.outputs['evaluation'],
        blessing=evaluator.outputs['blessing'],
        baseline_model=deployed.outputs['model'],
        pushed_model=pusher.outputs['pushed_model'] if pushed else None,
        external_examples=external, drift=drift.outputs['drift']))
  return tfx_pipeline.Pipeline(
      pipeline_name=pipeline_name,
      pipeline_root=pipeline_root,
      components=components,
      enable_cache=enable_cache,
      metadata_connection_config=metadata_connection_config,
      beam_pipeline_args=beam_pipeline_args or [],
  )
