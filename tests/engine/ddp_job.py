"""A tiny search (or retraining of r2plus1d-baseline) after which every rank writes
what it holds, so that test_distributed.py can check that the ranks agree and
compare them with one process. Under torchrun:

    torchrun --nproc_per_node 2 tests/engine/ddp_job.py {search,train} OUT DATA_ROOT [key=value ...]

and, for the one-process reference, in the test's own process (:func:`job`).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path

import torch

from tests.conftest import tiny
from vidnas.engine import distributed
from vidnas.engine.rundir import open_run


def _copy(params: Iterable[torch.Tensor]) -> list[torch.Tensor]:
    return [p.detach().cpu().clone() for p in params]


def _held(net: torch.nn.Module, search: bool) -> dict[str, list[torch.Tensor]]:
    """The parameters: the weights, and (a supernet) alpha and beta apart."""
    if search:
        return {"arch": _copy(net.arch_parameters()), "weights": _copy(net.weight_parameters())}
    return {"weights": _copy(net.parameters())}


def job(what: str, out: str | Path, data_root: str | Path, *overrides: str) -> Path:
    """Run (or resume, if ``out`` holds a checkpoint) a tiny ``search`` or ``train``.
    Every rank saves ``rank<r>.pt`` in the run directory: its parameters at the
    start ("start") and at the end of the run, the history, and (a search) the
    derived spec. Returns the run directory."""
    cfg = tiny(data_root, "runtime.threads=1", *overrides)
    if what == "search":
        from vidnas.loops.search import KIND, SearchLoop

        run, cfg, state = open_run(KIND, cfg, out, True)
        loop = SearchLoop(cfg, run, progress=False)
        if state is None:
            loop.save()
        else:
            loop.load_state_dict(state)
        start = _held(loop.net, True)
        res = loop.run_all()
        held = {**_held(loop.net, True), "spec": res.derivation.spec.to_dict()}
    elif what == "train":
        from vidnas.loops.train import KIND, TrainLoop

        run, cfg, state = open_run(KIND, cfg, out, True)
        loop = TrainLoop(cfg, run, "r2plus1d-baseline", progress=False)
        if state is None:
            loop.initialise(None)
        else:
            loop.load_state_dict(state)
        start = _held(loop.net, False)
        loop.run_all()
        held = _held(loop.net, False)
    else:
        raise ValueError(f"search or train, not {what!r}")
    held.update(start=start, history=loop.history)
    torch.save(held, run.path / f"rank{loop.dist.rank}.pt")
    return run.path


if __name__ == "__main__":
    job(*sys.argv[1:])
    distributed.shutdown()
