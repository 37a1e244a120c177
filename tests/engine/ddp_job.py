"""Run under torchrun by test_distributed.py: a tiny search (or retraining) in which
every rank then writes what it holds, so the test can check that the ranks agree.

    torchrun --nproc_per_node 2 tests/engine/ddp_job.py search OUT DATA_ROOT [key=value ...]
"""

from __future__ import annotations

import sys

import torch

from tests.conftest import tiny
from vidnas.engine import distributed
from vidnas.engine.rundir import open_run


def main() -> None:
    what, out, data_root, *overrides = sys.argv[1:]
    cfg = tiny(data_root, "runtime.threads=1", *overrides)
    if what == "search":
        from vidnas.loops.search import KIND, SearchLoop

        run, cfg, state = open_run(KIND, cfg, out, True)
        loop = SearchLoop(cfg, run, progress=False)
        if state is None:
            loop.save()
        else:
            loop.load_state_dict(state)
        res = loop.run_all()
        held = {
            "arch": [p.detach().cpu().clone() for p in loop.net.arch_parameters()],
            "weights": [p.detach().cpu().clone() for p in loop.net.weight_parameters()],
            "spec": res.derivation.spec.to_dict(),
        }
    else:
        from vidnas.loops.train import KIND, TrainLoop

        run, cfg, state = open_run(KIND, cfg, out, True)
        loop = TrainLoop(cfg, run, "r2plus1d-baseline", progress=False)
        if state is None:
            loop.initialise(None)
        else:
            loop.load_state_dict(state)
        loop.run_all()
        held = {"weights": [p.detach().cpu().clone() for p in loop.net.parameters()]}
    held["history"] = loop.history
    torch.save(held, f"{run.path}/rank{loop.dist.rank}.pt")
    distributed.shutdown()


if __name__ == "__main__":
    main()
