"""How a search starts and spends its budget: the residual blocks' starting scale,
the warm-up and the architecture learning rate, resolved once per run from the
``search`` section, the space's depth and the steps an epoch takes
(docs/design.md, "The search schedule").

They follow the space and the budget instead of being constants of one preset, so
that a 6-layer space and the paper's 26-layer one both start with ops that differ
and a training signal that passes, and a 10-epoch search on two CPU cores and a
70-epoch search at the paper's scale move alpha and beta at a sensible pace:

- **residual start** (``search.residual_init``, null: follow the depth):
  ``1 / sqrt(searched layers)``. A relaxed layer adds its ops' residual branches,
  each scaled by the last BatchNorm's starting scale, to what passes through;
  over L layers their variance adds up L times, so the scale that keeps the sum
  of the whole network's branches at about the variance of one is 1 / sqrt(L)
  (Fixup's and SkipInit's reasoning, Zhang et al. 2019, De and Smith 2020). Measured:
  on ``cpu-small``'s 26 layers 0.2 decided where 1.0 left six choices open and
  the network unsettled; the demo's 6 layers get 0.41 (docs/results.md, "The
  search recipe in the defaults").

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
    residual_init: float

    @property
    def arch_steps(self) -> int:
        """Architecture steps the run will take."""
        return (self.epochs - self.warmup_epochs) * self.steps_per_epoch

    @classmethod
    def resolve(
        cls, search: SearchConfig, steps_per_epoch: int, searched_layers: int
    ) -> SearchSchedule:
        """The schedule of a search of ``search``'s settings over a space of
        ``searched_layers`` stack layers (the sum of its stages' ``max_layers``)."""
        residual = search.residual_init
        if residual is None:
            residual = 1 / math.sqrt(max(1, searched_layers))
        warmup = search.warmup_epochs
        if warmup is None:
            warmup = min(search.epochs, math.ceil(search.epochs / 7))
        lr = search.arch_lr
        if lr is None:
            steps = max(1, (search.epochs - warmup) * steps_per_epoch)
            lr = ARCH_LR_REF * math.sqrt(ARCH_STEPS_REF / steps)
        return cls(search.epochs, warmup, steps_per_epoch, lr, residual)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "arch_steps": self.arch_steps}
