"""The registry of architectures: how each one trains.

Everything that differs between architectures is here (training phases,
whether the backbone is fine-tuned phase by phase, whether it starts from
initial weights) or in the builders of trainer/models.py keyed by the same
names; the Trainer and the runners ask and never test for a name. This half
imports no Keras, so the local runner's preflight can ask it in a fraction
of a second.
"""
import dataclasses
from typing import Callable, Iterable, List, Tuple

from contract import options

# (phase number, epochs, learning rate)
Phase = Tuple[int, int, float]


def one_phase(settings: options.TrainingSettings) -> List[Phase]:
  return [(1, settings.epochs, settings.learning_rate)]


def head_then_fine_tune(settings: options.TrainingSettings) -> List[Phase]:
  """The head on the frozen backbone first, then the top blocks at the
  fine-tuning learning rate."""
  epochs = settings.epochs
  head = min(epochs, max(1, round(epochs *
                                  settings.resnet_head_epochs_fraction)))
  phases = [(1, head, settings.learning_rate)]
  if epochs > head:
    phases.append((2, epochs - head, settings.fine_tune_learning_rate))
  return phases


@dataclasses.dataclass(frozen=True)
class Architecture:
  """phases(settings) -> [(phase, epochs, learning rate)];
  fine_tunes_backbone: before each phase trainer/models.set_fine_tuning sets
  what trains (recompile after); needs_weights: starts from
  `settings.resnet_weights`, resolved before any work (trainer/resnet_weights).
  """
  phases: Callable[[options.TrainingSettings], List[Phase]] = one_phase
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
