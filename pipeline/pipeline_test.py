"""create_pipeline: stages, caching, Beam args (compiled, nothing run)."""
import pytest
from tfx.proto.orchestration import executable_spec_pb2
from tfx.proto.orchestration import pipeline_pb2

from contract import settings as config
from contract import options
from pipeline import compilation
from pipeline import pipeline as pipeline_lib

BEAM_ARGS = ['--runner=FlinkRunner', '--flink_master=flink:8081']


def _ir(stop_after='push', **kwargs):
  pipeline = pipeline_lib.create_pipeline(
      'p', '/tmp/root', '/tmp/data', config.SCHEMA_PATH, '/tmp/serving',
      '/tmp/reports', stop_after=stop_after,
      training=options.training_settings('quick'), **kwargs)
  return compilation.compile_for_local(pipeline)


def _nodes(ir):
  return {n.pipeline_node.node_info.id: n.pipeline_node for n in ir.nodes}


_VALIDATE = {'ImageExampleGen', 'ImportSchemaGen', 'StatisticsGen',
             'ExampleValidator', 'AnomalyGate', 'DeployedModel', 'DriftCheck'}


@pytest.mark.parametrize('stop_after, expected', [
    ('ingest', {'ImageExampleGen'}),
    ('validate', _VALIDATE),
    ('train', _VALIDATE | {'Trainer'}),
    ('evaluate', _VALIDATE | {'Trainer', 'Evaluator', 'RunReport'}),
    ('push', _VALIDATE | {'Trainer', 'Evaluator', 'Pusher', 'RunReport'}),
])
def test_stop_after_runs_each_stage_and_those_before(stop_after, expected):
  assert set(_nodes(_ir(stop_after))) == expected


def test_unknown_stage_is_refused():
  with pytest.raises(ValueError, match='stop_after'):
    _ir('deploy')


def test_trainer_waits_for_the_anomaly_gate_and_the_drift_check():
  trainer = _nodes(_ir('train'))['Trainer']
  assert {'AnomalyGate', 'DriftCheck'} <= set(trainer.upstream_nodes)


def test_drift_is_checked_against_the_deployed_model_and_reported():
  nodes = _nodes(_ir())

  def producers(node_id, key):
    channels = nodes[node_id].inputs.inputs[key].channels
    return {c.producer_node_query.id for c in channels}
  assert producers('DriftCheck', 'statistics') == {'StatisticsGen'}
  assert producers('DriftCheck', 'baseline_model') == {'DeployedModel'}
  # The Pusher keeps the statistics in the version: the next run's baseline.
  assert producers('Pusher', 'statistics') == {'StatisticsGen'}
  assert producers('RunReport', 'drift') == {'DriftCheck'}
  on_drift = nodes['DriftCheck'].parameters.parameters['on_drift']
  assert on_drift.field_value.string_value == 'warn'


def test_only_the_present_seeking_nodes_skip_the_cache():
  for node_id, node in _nodes(_ir(enable_cache=True)).items():
    expected = node_id not in {c.__name__ for c in compilation.NEVER_CACHED}
    assert node.execution_options.caching_options.enable_cache == expected, (
        node_id)


def test_beam_args_reach_every_beam_component():
  ir = _ir(beam_pipeline_args=BEAM_ARGS)
  deployment = pipeline_pb2.IntermediateDeploymentConfig()
  ir.deployment_config.Unpack(deployment)
  beam_nodes = set()
  for node_id, spec in deployment.executor_specs.items():
    if spec.Is(executable_spec_pb2.BeamExecutableSpec.DESCRIPTOR):
      beam = executable_spec_pb2.BeamExecutableSpec()
      spec.Unpack(beam)
      assert list(beam.beam_pipeline_args) == BEAM_ARGS, node_id
      beam_nodes.add(node_id)
  assert beam_nodes == {'ImageExampleGen', 'StatisticsGen', 'Evaluator'}


def test_an_external_cohort_is_validated_and_evaluated_never_trained_on():
  nodes = _nodes(_ir(external_data_root='/tmp/external'))
  external = {'ExternalExampleGen', 'ExternalStatisticsGen',
              'ExternalExampleValidator', 'ExternalAnomalyGate'}
  assert external <= set(nodes)
  # Training waits until the external cohort passed validation too...
  assert {'AnomalyGate', 'ExternalAnomalyGate'} <= set(
      nodes['Trainer'].upstream_nodes)
  # ...but never reads it; the Evaluator and the report do.
  def producers(node_id, key):
    channels = nodes[node_id].inputs.inputs[key].channels
    return {c.producer_node_query.id for c in channels}
  trainer_reads = set().union(*(producers('Trainer', key)
                                for key in nodes['Trainer'].inputs.inputs))
  assert 'ImageExampleGen' in trainer_reads
  assert 'ExternalExampleGen' not in trainer_reads
  assert producers('Evaluator', 'external_examples') == {'ExternalExampleGen'}
  assert producers('RunReport', 'external_examples') == {'ExternalExampleGen'}
  assert producers('ExternalExampleGen', 'reference_examples') == {
      'ImageExampleGen'}


def test_without_an_external_cohort_there_is_no_external_branch():
  nodes = _nodes(_ir())
  assert not [n for n in nodes if n.startswith('External')]
  assert 'external_examples' not in nodes['Evaluator'].inputs.inputs
