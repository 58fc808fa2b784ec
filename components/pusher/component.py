"""Pusher: TFX's Pusher with our executor, and what the model card needs.

The card goes inside the pushed version (assets.extra/, before the atomic
rename), so the Pusher reads what the card says: besides TFX's inputs
(model, model_blessing), the evaluation (TFMA metrics and plots, the
blessing decision), the main Examples (their ingestion report) and an
external cohort's Examples. All three are optional: without one the card
says what it lacks. The main data's statistics (optional too) go into the
version as the next drift check's baseline.
"""
from typing import Optional

from tfx import types
from tfx.components.pusher import component as tfx_pusher
from tfx.dsl.components.base import base_component
from tfx.dsl.components.base import executor_spec
from tfx.proto import pusher_pb2
from tfx.types import standard_artifacts
from tfx.types import standard_component_specs as specs
from tfx.types.component_spec import ChannelParameter

from components.pusher import executor

# Input keys: the run report's (components/run_report/reading.py).
EVALUATION_KEY = executor.EVALUATION_KEY
EXAMPLES_KEY = executor.EXAMPLES_KEY
EXTERNAL_EXAMPLES_KEY = executor.EXTERNAL_EXAMPLES_KEY
STATISTICS_KEY = executor.STATISTICS_KEY


class PusherSpec(specs.PusherSpec):
  INPUTS = dict(specs.PusherSpec.INPUTS, **{
      EVALUATION_KEY: ChannelParameter(
          type=standard_artifacts.ModelEvaluation, optional=True),
      EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples,
                                     optional=True),
      EXTERNAL_EXAMPLES_KEY: ChannelParameter(
          type=standard_artifacts.Examples, optional=True),
      STATISTICS_KEY: ChannelParameter(
          type=standard_artifacts.ExampleStatistics, optional=True),
  })


class Pusher(tfx_pusher.Pusher):
  SPEC_CLASS = PusherSpec
  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

  def __init__(self, model: types.BaseChannel,
               model_blessing: types.BaseChannel,
               push_destination: pusher_pb2.PushDestination,
               evaluation: Optional[types.BaseChannel] = None,
               examples: Optional[types.BaseChannel] = None,
               external_examples: Optional[types.BaseChannel] = None,
               statistics: Optional[types.BaseChannel] = None):
    # TFX's __init__ builds its own spec; ours has more inputs.
    base_component.BaseComponent.__init__(self, spec=PusherSpec(
        model=model, model_blessing=model_blessing,
        push_destination=push_destination,
        pushed_model=types.Channel(type=standard_artifacts.PushedModel),
        **{EVALUATION_KEY: evaluation, EXAMPLES_KEY: examples,
           EXTERNAL_EXAMPLES_KEY: external_examples,
           STATISTICS_KEY: statistics}))
