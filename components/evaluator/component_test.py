"""OperatingPointEvaluator compiles with and without an external cohort,
for the local runner and for Kubeflow (nothing is run)."""
import pytest
from tfx import v1 as tfx

from components.evaluator import executor
from components.evaluator.component import OperatingPointEvaluator
from contract import options
from pipeline import compilation

EXTERNAL = executor.EXTERNAL_EXAMPLES_KEY


def _pipeline(with_external: bool) -> tfx.dsl.Pipeline:
  """The Evaluator fed by importers, as create_pipeline feeds it."""
  def imported(name, artifact_type):
    return tfx.dsl.Importer(source_uri=f'/tmp/{name}',
                            artifact_type=artifact_type).with_id(name)

  types = tfx.types.standard_artifacts
  nodes = [imported('examples', types.Examples),
           imported('model', types.Model), imported('deployed', types.Model),
           imported('schema', types.Schema)]
  if with_external:
    nodes.append(imported('external', types.Examples))
  channels = {node.id: node.outputs['result'] for node in nodes}
  evaluator = OperatingPointEvaluator(
      examples=channels['examples'], model=channels['model'],
      baseline_model=channels['deployed'], schema=channels['schema'],
      example_splits=['test'], gates=options.Gates(),
      runtime={'min_external_auc': tfx.dsl.experimental.RuntimeParameter(
          name='min_external_auc', ptype=float, default=0.5)},
      external_examples=channels.get('external')).with_id('Evaluator')
  return tfx.dsl.Pipeline(pipeline_name='p', pipeline_root='/tmp/root',
                          components=nodes + [evaluator])


@pytest.mark.parametrize('with_external', [True, False])
def test_compiles_for_the_local_runner(with_external):
  ir = compilation.compile_for_local(_pipeline(with_external))
  [node] = [n.pipeline_node for n in ir.nodes
            if n.pipeline_node.node_info.id == 'Evaluator']
  inputs = set(node.inputs.inputs)
  assert {'examples', 'model', 'baseline_model', 'schema'} <= inputs
  assert (EXTERNAL in inputs) is with_external
  if with_external:
    assert 'external' in node.upstream_nodes
  parameters = node.parameters.parameters
  for name in options.runtime_names(options.Gates):
    assert name in parameters, name


@pytest.mark.parametrize('with_external', [True, False])
def test_compiles_for_kubeflow(with_external):
  parameter = tfx.dsl.experimental.RuntimeParameter(
      name='min_external_auc', ptype=float, default=0.5)
  spec = compilation.compile_for_kubeflow(
      _pipeline(with_external), 'image:tag', {'min_external_auc': parameter})
  task = spec['root']['dag']['tasks']['Evaluator']
  artifacts = task['inputs'].get('artifacts', {})
  assert 'examples' in artifacts
  assert (EXTERNAL in artifacts) is with_external
  assert 'min_external_auc' in spec['root']['inputDefinitions']['parameters']
