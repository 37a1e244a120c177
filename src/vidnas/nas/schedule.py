"""How a search spends its budget: the warm-up and the architecture learning rate,
resolved once per run from the ``search`` section and the steps an epoch takes
(docs/design.md, "The search schedule").

Both follow the budget instead of being constants of one preset, so that a
10-epoch search on two CPU cores and a 70-epoch search at the paper's scale move
alpha and beta at a sensible pace:

- **warm-up** (``search.warmup_epochs``, null: follow the budget): the paper's
  share, 10 of 70 epochs, rounded up: ``ceil(epochs / 7)``.
- **architecture learning rate** (``search.arch_lr``, null: follow the budget):
  ``ARCH_LR_REF * sqrt(ARCH_STEPS_REF / steps)`` over the run's architecture steps.
  Adam's steps are normalised, so where the gradient is noise alpha random-walks
  by about ``arch_lr * sqrt(steps)``, and where it is signal it drifts by about
  ``arch_lr * steps * SNR``. Holding ``arch_lr * sqrt(steps)`` fixed holds the
  walk a null can make fixed whatever the budget, while a real gradient's drift
  still grows with the budget as ``sqrt(steps) * SNR``. The reference is the
  measured one: 0.3 over the demo's 675 architecture steps (25 searching epochs of
  27 steps) decides the echo task without deciding its shuffled-label null
  (docs/results.md, "A floor on Adam's step").
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from vidnas.config import SearchConfig

ARCH_LR_REF = 0.3
ARCH_STEPS_REF = 675


@dataclass(frozen=True)
class SearchSchedule:
    epochs: int
    warmup_epochs: int
    steps_per_epoch: int
    arch_lr: float

    @property
    def arch_steps(self) -> int:
        """Architecture steps the run will take."""
        return (self.epochs - self.warmup_epochs) * self.steps_per_epoch

    @classmethod
    def resolve(cls, search: SearchConfig, steps_per_epoch: int) -> SearchSchedule:
        warmup = search.warmup_epochs
        if warmup is None:
            warmup = min(search.epochs, math.ceil(search.epochs / 7))
        lr = search.arch_lr
        if lr is None:
            steps = max(1, (search.epochs - warmup) * steps_per_epoch)
            lr = ARCH_LR_REF * math.sqrt(ARCH_STEPS_REF / steps)
        return cls(search.epochs, warmup, steps_per_epoch, lr)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "arch_steps": self.arch_steps}
