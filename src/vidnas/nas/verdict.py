"""Did the search decide? The one answer, computed once at the end of a search
and read by ``arch.json``, ``report.md`` and the terminal (docs/design.md,
"Search decisiveness").

A derivation always returns an architecture, so a search's output is a finding
only when three things hold together:

- every choice on the derived path has a winner at p >= ``search.decided_threshold``
  (:mod:`vidnas.nas.decisiveness`);
- the derived network has been the same for the last :data:`SETTLED_EPOCHS`
  epochs;
- the learned alpha and beta predict the inference split, which no architecture
  step saw, better than uniform ones once calibrated (:mod:`vidnas.nas.heldout`).

The probabilities and settling can be reached by fitting noise in the validate
split, which is why the held-out check is part of the verdict.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from vidnas.nas.decisiveness import Decisiveness
from vidnas.nas.heldout import HELDOUT_SE, confirmed

SETTLED_EPOCHS = 3  # a settled search derived the same network this many epochs running

Outcome = Literal["decided", "undecided", "not settled", "not confirmed"]


def unsettled_epochs(history: Sequence[dict[str, Any]], last: int = SETTLED_EPOCHS) -> list[int]:
    """The epochs among the last ``last`` after which the derived network changed
    (none: it has been the same for the last ``last`` epochs)."""
    return (
        [r["epoch"] for r in history[-(last - 1) :] if r.get("derived_changed")] if last > 1 else []
    )


@dataclass(frozen=True)
class Verdict:
    """The search's verdict and what it rests on.

    ``heldout``: the calibrated held-out gain (:func:`vidnas.nas.heldout.heldout_gain`
    without its ``validate`` part, which is ``validate_gain``: the uncalibrated gain on
    the split the steps fitted, kept for comparison); ``effects``: what each undecided
    choice is worth (:func:`vidnas.nas.heldout.choice_effects`)."""

    decisiveness: Decisiveness
    epochs: int  # epochs searched
    unsettled_epochs: tuple[int, ...]
    heldout: dict[str, Any] | None = None
    validate_gain: dict[str, Any] | None = None
    effects: tuple[dict[str, Any], ...] = ()
    settle_epochs: int = SETTLED_EPOCHS
    heldout_se: float = HELDOUT_SE

    @classmethod
    def measure(
        cls,
        dec: Decisiveness,
        history: Sequence[dict[str, Any]],
        heldout: dict[str, Any] | None = None,
        effects: Sequence[dict[str, Any]] = (),
    ) -> Verdict:
        """The verdict from the measurements of the end of a search and its history."""
        heldout = dict(heldout) if heldout else None
        validate = heldout.pop("validate", None) if heldout else None
        return cls(
            dec, len(history), tuple(unsettled_epochs(history)), heldout, validate, tuple(effects)
        )

    @property
    def threshold(self) -> float:
        return self.decisiveness.threshold

    @property
    def undecided(self) -> tuple[str, ...]:
        """One note per stage with an undecided choice, in plain words."""
        return self.decisiveness.undecided

    @property
    def settled(self) -> bool:
        return not self.unsettled_epochs and self.epochs >= self.settle_epochs

    @property
    def confirmed(self) -> bool:
        return confirmed(self.heldout)

    @property
    def outcome(self) -> Outcome:
        if self.decisiveness.undecided:
            return "undecided"
        if not self.settled:
            return "not settled"
        if not self.confirmed:
            return "not confirmed"
        return "decided"

    @property
    def decided(self) -> bool:
        return self.outcome == "decided"

    def to_dict(self) -> dict[str, Any]:
        """``arch.json``'s record of the decision (``x-search.decisiveness``)."""
        return {
            **self.decisiveness.to_dict(),
            "epochs": self.epochs,
            "settle_epochs": self.settle_epochs,
            "unsettled_epochs": list(self.unsettled_epochs),
            "settled": self.settled,
            "heldout": self.heldout,
            "validate_gain": self.validate_gain,
            "heldout_se": self.heldout_se,
            "confirmed": self.confirmed,
            "verdict": self.outcome,
            "undecided_effects": list(self.effects),
        }

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> Verdict:
        """The verdict an ``arch.json`` records (:meth:`to_dict`), as it was measured."""
        epochs = record.get("epochs", record["settle_epochs"] if record["settled"] else 0)
        return cls(
            Decisiveness.from_dict(record),
            epochs,
            tuple(record["unsettled_epochs"]),
            record["heldout"],
            record["validate_gain"],
            tuple(record["undecided_effects"]),
            record["settle_epochs"],
            record["heldout_se"],
        )
