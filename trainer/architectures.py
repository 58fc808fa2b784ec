"""The registry of architectures: how each one trains.

Everything that differs between architectures is here (training phases,
whether the backbone is fine-tuned phase by phase, whether it starts from
initial weights) or in the builders of trainer/models.py keyed by the same
names; the Trainer and the runners ask and never test for a name. This half
imports no Keras, so the local runner's preflight can ask it in a fraction
of a second.
"""
import dataclasses
from typing import Callable, Iterable, List, NamedTuple

from contract import options

# What trains in a phase (trainer/models.set_fine_tuning applies it):
ALL = 'all'    # every layer (a CNN; a backbone from random weights)
HEAD = 'head'  # only the new head, on a frozen backbone
TOP = 'top'    # the head and the backbone's last stage (fine-tuning)
TRAINS = (ALL, HEAD, TOP)


class Phase(NamedTuple):
  number: int
  epochs: int
  learning_rate: float
  trains: str = ALL


def one_phase(settings: options.TrainingSettings,
              pretrained: bool = False) -> List[Phase]:
  del pretrained  # nothing is pretrained
  return [Phase(1, settings.epochs, settings.learning_rate, ALL)]


def head_then_fine_tune(settings: options.TrainingSettings,
                        pretrained: bool) -> List[Phase]:
  """Pretrained: the head on the frozen backbone first, then the top blocks
  at the fine-tuning learning rate. From random weights there is nothing to
  keep: one phase in which every layer trains from epoch 1 at the
  from-scratch learning rate (a frozen random backbone is a fixed random
  projection; the head alone learns little from it)."""
  epochs = settings.epochs
  if not pretrained:
    return [Phase(1, epochs, settings.from_scratch_learning_rate, ALL)]
  head = min(epochs, max(1, round(epochs *
                                  settings.resnet_head_epochs_fraction)))
  phases = [Phase(1, head, settings.learning_rate, HEAD)]
  if epochs > head:
    phases.append(Phase(2, epochs - head, settings.fine_tune_learning_rate,
                        TOP))
  return phases


@dataclasses.dataclass(frozen=True)
class Architecture:
  """phases(settings, pretrained) -> [Phase(number, epochs, learning rate,
  what trains)], `pretrained` being whether the architecture starts from
  initial weights (settings.resnet_weights other than none);
  fine_tunes_backbone: before each phase trainer/models.set_fine_tuning sets
  what trains (recompile after); needs_weights: starts from
  `settings.resnet_weights`, resolved before any work (trainer/resnet_weights).
  """
  phases: Callable[[options.TrainingSettings, bool], List[Phase]] = one_phase
  fine_tunes_backbone: bool = False
  needs_weights: bool = False


REGISTRY = {
    'baseline_cnn': Architecture(),
    'improved_cnn': Architecture(),
    'resnet50': Architecture(phases=head_then_fine_tune,
                             fine_tunes_backbone=True, needs_weights=True),
}
assert tuple(REGISTRY) == options.ARCHITECTURES, 'named in contract/options.py'


def get(name: str) -> Architecture:
  if name not in REGISTRY:
    raise ValueError(f'unknown architecture {name!r}; choose from '
                     f'{", ".join(options.ARCHITECTURES)}')
  return REGISTRY[name]


def needs_weights(names: Iterable[str]) -> bool:
  """Whether any of the architectures `names` starts from initial weights."""
  return any(get(name).needs_weights for name in names)
