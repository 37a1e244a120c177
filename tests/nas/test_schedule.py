"""The search schedule follows the space and the budget: the residual start is
1 / sqrt(searched layers), the warm-up the paper's share of the epochs, and the
architecture learning rate holds ``arch_lr * sqrt(steps)`` at the demo's measured
0.3 x sqrt(675)."""

from __future__ import annotations

import json
import math

import pytest

from tests.conftest import tiny
from vidnas.config import load_config
from vidnas.nas.schedule import ARCH_LR_REF, ARCH_STEPS_REF, SearchSchedule


@pytest.mark.parametrize(("epochs", "warmup"), [(70, 10), (30, 5), (10, 2), (7, 1), (2, 1), (1, 1)])
def test_the_warm_up_is_the_papers_share_of_the_epochs_rounded_up(epochs, warmup):
    cfg = load_config("tiny", [f"search.epochs={epochs}"])
    assert SearchSchedule.resolve(cfg.search, 5, 6).warmup_epochs == warmup


def test_the_architecture_learning_rate_holds_the_random_walk_of_a_null_fixed():
    """Four times the architecture steps, half the rate: ``arch_lr * sqrt(steps)``
    (how far Adam's normalised steps walk on a gradient of noise) is the reference's
    whatever the budget, and the demo's 25 searching epochs of 27 steps are it."""
    s = load_config("tiny", ["search.epochs=30"]).search
    demo = SearchSchedule.resolve(s, 27, 6)
    assert demo.arch_steps == ARCH_STEPS_REF == 675 and demo.arch_lr == ARCH_LR_REF
    for spe in (3, 12, 108):
        sched = SearchSchedule.resolve(s, spe, 6)
        assert sched.arch_steps == 25 * spe
        assert sched.arch_lr * math.sqrt(sched.arch_steps) == pytest.approx(0.3 * math.sqrt(675))
    assert SearchSchedule.resolve(s, 108, 6).arch_lr == pytest.approx(demo.arch_lr / 2)


@pytest.mark.parametrize(("layers", "residual"), [(1, 1.0), (4, 0.5), (6, 6**-0.5), (26, 26**-0.5)])
def test_the_residual_start_shrinks_with_the_square_root_of_the_depth(layers, residual):
    s = load_config("tiny").search
    assert SearchSchedule.resolve(s, 9, layers).residual_init == pytest.approx(residual)
    assert SearchSchedule.resolve(s, 9, 0).residual_init == 1.0  # no blocks at all


def test_set_values_are_kept():
    over = ["search.warmup_epochs=0", "search.arch_lr=0.05", "search.residual_init=0"]
    s = load_config("tiny", over).search
    assert SearchSchedule.resolve(s, 9, 26) == SearchSchedule(2, 0, 9, 0.05, 0.0)


def test_the_presets_resolve_from_their_budget():
    """The demo resolves to the settings it was measured with; cpu-small's shorter
    search gets a larger rate, the paper's longer one a smaller."""
    demo = SearchSchedule.resolve(load_config("demo").search, 27, 6)
    assert (demo.warmup_epochs, demo.arch_lr) == (5, 0.3)
    small = SearchSchedule.resolve(load_config("cpu-small").search, 16, 26)
    assert small.warmup_epochs == 2 and small.arch_lr == pytest.approx(0.3 * math.sqrt(675 / 128))
    paper = SearchSchedule.resolve(load_config("paper").search, 9000, 26)
    assert paper.warmup_epochs == 10 and paper.arch_lr < 0.02


def test_a_search_runs_the_schedule_it_resolved(finished_search):
    """The tiny search records its resolved schedule (its residual start among it),
    and its architecture optimiser ran at the resolved rate from the first
    searching epoch on."""
    import torch

    run, _ = finished_search
    saved = json.loads((run / "arch.json").read_text())["x-search"]["schedule"]
    cfg = tiny()
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    spe = saved["steps_per_epoch"]
    layers = sum(st.max_layers for st in cfg.space.stages)
    assert saved == SearchSchedule.resolve(cfg.search, spe, layers).to_dict()
    assert [r["arch_steps"] for r in rows] == [
        0 if e < saved["warmup_epochs"] else spe for e in range(cfg.search.epochs)
    ]
    state = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    groups = state["a_opt"]["opt"]["param_groups"]
    assert {g["lr"] for g in groups} == {saved["arch_lr"]}
    assert saved["residual_init"] == pytest.approx(6**-0.5)  # tiny: 6 searched layers
