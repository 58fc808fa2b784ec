"""create_pipeline(...) compiled for an orchestrator, with what TFX's
compilers do not do by themselves.

Local (LocalDagRunner IR): TFX has only a pipeline-wide cache switch, so the
nodes that must see the present are turned off one by one. Kubeflow (KFP v2
PipelineSpec): schema 2.1.0, no resolver task (open-source KFP rejects it),
caching off for the same nodes and for ingestion, runtime parameter types and
defaults filled in. Nodes are chosen by component class, never by id strings.

Schema 2.1.0, not TFX's default 2.0.0: KFP v2's driver implements only
`runtimeValue.constant` (2.0.0 writes the deprecated `constantValue`) and
type-checks inputs against `parameterType` (2.0.0 writes the deprecated
`type`), and TFX's container entrypoint reads the executor input's
`parameterValues`, the only field KFP fills, only when given the inputs spec
(`--json_serialized_inputs_spec_args`, written with 2.1.0).
tests/test_kfp_tasks.py runs the tasks as the driver and launcher would.
"""
import copy
import tempfile
from typing import Any, Dict, Iterable, Set

from tfx.dsl.compiler import compiler
from tfx.orchestration import data_types
from tfx.orchestration import pipeline as tfx_pipeline

from components.deployed_model.component import DeployedModel
from components.image_example_gen.component import ImageExampleGen
from components.run_report.component import RunReport

# Must see the present, never a cached result: the deployed model changes
# between runs, and every run gets its own report.
NEVER_CACHED = (DeployedModel, RunReport)
# On Kubeflow ingestion must also look at the data root every run: the TFX
# driver that fingerprints inputs does not run on open-source KFP.
KFP_NEVER_CACHED = (ImageExampleGen,) + NEVER_CACHED

_KFP_TYPES = {str: 'STRING', int: 'NUMBER_INTEGER', float: 'NUMBER_DOUBLE'}


def node_ids(pipeline: tfx_pipeline.Pipeline, classes: Iterable[type]) -> Set[str]:
  """Ids of the pipeline's nodes that are instances of `classes`."""
  return {component.id for component in pipeline.components
          if isinstance(component, tuple(classes))}


def compile_for_local(pipeline: tfx_pipeline.Pipeline):
  """Pipeline IR for the LocalDagRunner; NEVER_CACHED nodes skip the cache."""
  ir = compiler.Compiler().compile(pipeline)
  never = node_ids(pipeline, NEVER_CACHED)
  for node in ir.nodes:
    if node.pipeline_node.node_info.id in never:
      node.pipeline_node.execution_options.caching_options.enable_cache = False
  return ir


def compile_for_kubeflow(
    pipeline: tfx_pipeline.Pipeline, image: str,
    parameters: Dict[str, data_types.RuntimeParameter]
) -> Dict[str, Any]:
  """The KFP v2 PipelineSpec (dict), ready for open-source KFP: no resolver
  task, KFP_NEVER_CACHED nodes' caching off, the runtime `parameters`
  declared with their types and defaults."""
  # Here, not at the top: the local runner need not import KFP's compiler.
  from tfx.orchestration.kubeflow.v2 import kubeflow_v2_dag_runner as kfv2  # pylint: disable=g-import-not-at-top
  with tempfile.TemporaryDirectory() as tmp:
    runner = kfv2.KubeflowV2DagRunner(
        config=kfv2.KubeflowV2DagRunnerConfig(
            default_image=image, use_pipeline_spec_2_1=True),  # see above
        output_dir=tmp)
    job = runner.run(pipeline, write_out=False)
  spec = copy.deepcopy(job['pipelineSpec'])
  tasks = spec['root']['dag']['tasks']
  resolvers = [name for name, task in tasks.items()
               if 'resolver' in name.lower() or 'resolver' in str(
                   spec['deploymentSpec']['executors'].get(
                       task['componentRef']['name'] + '_executor', ''))]
  if resolvers:
    raise RuntimeError(f'open-source KFP cannot run resolver tasks: '
                       f'{resolvers}')
  for name in node_ids(pipeline, KFP_NEVER_CACHED):
    if name in tasks:
      tasks[name]['cachingOptions'] = {}  # enableCache absent = off
  declared = spec['root'].setdefault('inputDefinitions', {}).setdefault(
      'parameters', {})
  for name, parameter in parameters.items():
    declared.setdefault(name, {})
    declared[name]['parameterType'] = _KFP_TYPES[parameter.ptype]
    declared[name].pop('type', None)
    declared[name]['defaultValue'] = parameter.default
  return spec
