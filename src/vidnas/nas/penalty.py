"""The cost term of the architecture step (paper eq. 5), as one object the
:class:`vidnas.nas.architect.Architect` is given: what a search trades accuracy
against is chosen where the search is set up, not inside the step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from vidnas.config import SearchConfig


@dataclass(frozen=True)
class CostPenalty:
    """``lambda * log_k(C)`` of the expected cost C in GMACs (eq. 5); with a budget,
    ``lambda * |log_k(C / budget)|``, which pulls the expected cost towards the
    budget from either side. ``lambda`` and ``k`` act as one knob (lambda / ln k)."""

    weight: float  # lambda
    base: float = 10.0  # k
    budget: float | None = None  # GMACs

    @classmethod
    def from_config(cls, search: SearchConfig) -> CostPenalty:
        return cls(search.cost_lambda, search.cost_base, search.budget_gmacs)

    def __call__(self, gmacs: torch.Tensor) -> torch.Tensor:
        ratio = gmacs if self.budget is None else gmacs / self.budget
        log_k = torch.log(ratio) / math.log(self.base)
        return self.weight * (log_k if self.budget is None else torch.abs(log_k))
