"""The end of a search: derive the architecture, measure the verdict, write
``arch.json``, and evaluate the derived network with the supernet's weights.

``arch.json`` is the interchange format after the search: its ``meta.x-search``
carries the supernet path the network was cut from (what retraining with
``--init-from`` copies weights along), the classes, the verdict's record
(:meth:`vidnas.nas.verdict.Verdict.to_dict`) and where the search ran.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vidnas.engine.runtime import Runtime
from vidnas.engine.steps import evaluate_single_view, recalibrate_bn
from vidnas.loops.search_data import SearchData
from vidnas.models.cost import network_cost
from vidnas.models.network import build_network
from vidnas.models.spec import ArchSpec
from vidnas.nas.decisiveness import measure_supernet
from vidnas.nas.derive import Derivation
from vidnas.nas.heldout import choice_effects, heldout_gain
from vidnas.nas.supernet import Supernet, inherit_weights
from vidnas.nas.verdict import Verdict
from vidnas.report.verdict import heldout_line

log = logging.getLogger("vidnas.search")


@dataclass
class SearchResult:
    """What a finished search returns (:func:`vidnas.loops.search.run_search`)."""

    run_dir: Path
    derivation: Derivation  # its spec is arch.json's
    history: list[dict[str, Any]]
    summary: dict[str, Any]
    verdict: Verdict

    @property
    def decisiveness_record(self) -> dict[str, Any]:
        """``arch.json``'s record of the decision (:meth:`Verdict.to_dict`)."""
        return self.derivation.spec.meta["x-search"]["decisiveness"]


def measure_verdict(
    net: Supernet,
    d: Derivation,
    data: SearchData,
    rt: Runtime,
    threshold: float,
    history: list[dict[str, Any]],
) -> Verdict:
    """The verdict on derivation ``d``: its probabilities, settling over ``history``,
    the calibrated held-out gain and what each undecided choice is worth."""
    dec = measure_supernet(net, d.path, threshold)
    heldout = heldout_gain(
        net, data.loader("inference_eval", epoch=0), data.loader("val_eval", epoch=0), rt
    )
    effects = choice_effects(net, dec.choices, data.loader("inference_eval", epoch=0), rt)
    return Verdict.measure(dec, history, heldout, effects)


def searched_spec(
    d: Derivation,
    verdict: Verdict,
    run_dir: Path,
    classes: list[str],
    rt: Runtime,
    schedule: dict[str, Any],
) -> ArchSpec:
    """The derived spec with the search's record in ``meta.x-search``: where it
    ran, its path, its verdict, and the schedule the budget resolved to."""
    meta = {
        "x-search": {
            "run_dir": str(run_dir),
            "path": list(d.path),
            "layers": [list(x) for x in d.layers],
            "path_prob": d.path_prob,
            "classes": classes,
            "decisiveness": verdict.to_dict(),
            "schedule": schedule,
            "runtime": rt.describe(),
        }
    }
    return d.spec.replace(meta=meta)


def read_back(arch_path: Path) -> tuple[Derivation, Verdict]:
    """A finished search's derivation and verdict, from its ``arch.json``."""
    spec = ArchSpec.load(arch_path)
    found = spec.meta["x-search"]
    path, layers = tuple(found["path"]), tuple(tuple(x) for x in found["layers"])
    d = Derivation(spec, path, layers, found["path_prob"])
    return d, Verdict.from_dict(found["decisiveness"])


def evaluate_derived(
    spec: ArchSpec,
    d: Derivation,
    net: Supernet,
    data: SearchData,
    rt: Runtime,
    bn_batches: int,
) -> dict[str, Any]:
    """The derived network's cost, and its accuracy with its path's supernet weights and
    re-estimated BatchNorm statistics (no retraining) on the inference split, one centre
    clip a video."""
    derived = rt.module(build_network(spec))
    inherit_weights(derived, net, d.path, d.layers)
    bn = recalibrate_bn(derived, data.loader("train_eval", epoch=0), rt, bn_batches)
    res = evaluate_single_view(derived, data.loader("inference_eval", epoch=0, shuffle=False), rt)
    cost = network_cost(spec)
    return {
        "gmacs": cost.macs / 1e9,
        "params": cost.params,
        "input": list(spec.input),
        "classes": spec.num_classes,
        "chance": 1 / spec.num_classes,
        "derived_inference_acc": res["acc"],
        "derived_inference_loss": res["loss"],
        "derived_inference_videos": res["count"],
        "bn_recalibration_clips": bn,
    }


def warn_if_not_decided(verdict: Verdict, report: Path) -> None:
    """Say on the terminal what keeps the verdict from *decided*."""
    if verdict.undecided:
        log.warning(
            "the search left %d choice(s) undecided (below p = %.2f): the derived network "
            "is arbitrary there; see %s",
            len(verdict.undecided),
            verdict.threshold,
            report,
        )
    if verdict.unsettled_epochs:
        log.warning(
            "the derived network changed after epoch(s) %s, within the last %d: it has not "
            'settled (docs/design.md, "Search decisiveness")',
            ", ".join(map(str, verdict.unsettled_epochs)),
            verdict.settle_epochs,
        )
    if not verdict.confirmed:
        log.warning(
            "%s; its choices may fit the validate split rather than the task (%s)",
            heldout_line(verdict),
            report,
        )
