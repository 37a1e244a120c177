"""The search says when it did not decide: decisiveness on the derived path, the
held-out check, and the verdict they make."""

import json

import pytest
import torch
from torch import nn

from vidnas.data.index import VideoIndex, VideoRecord
from vidnas.engine.runtime import Runtime
from vidnas.loops.search_data import shuffled_labels
from vidnas.models.spec import ArchSpec
from vidnas.nas.decisiveness import measure
from vidnas.nas.derive import derive
from vidnas.nas.heldout import calibrated_gain, choice_effects, confirmed, heldout_gain
from vidnas.nas.supernet import Supernet, frozen_bn_stats
from vidnas.nas.verdict import Verdict, unsettled_epochs
from vidnas.report.verdict import (
    heldout_line,
    settled_line,
    terminal_lines,
    verdict_line,
    verdict_section,
)

from .test_supernet import CLASSES, INPUT, one_hot, small_space

CPU = Runtime(torch.device("cpu"))


def uniform(space):
    op_probs = [
        torch.full((len(st.widths), st.max_layers, len(space.ops)), 1 / len(space.ops))
        for st in space.stages
    ]
    path_probs, n_prev = [], 1
    for st in space.stages:
        path_probs.append(torch.full((n_prev, len(st.widths)), 1 / len(st.widths)))
        n_prev = len(st.widths)
    return op_probs, path_probs


def test_uniform_alpha_and_beta_are_undecided_everywhere():
    space = small_space()  # widths 2, 3, 2; layers 0, 2, 1; ops dil1, dil2, skip
    op_probs, path_probs = uniform(space)
    d = derive(space, op_probs, path_probs, INPUT, 3)
    dec = measure(space, d.path, op_probs, path_probs, 0.6)
    assert dec.width_win == pytest.approx((1 / 2, 1 / 3, 1 / 2))
    assert [len(w) for w in dec.op_win] == [0, 2, 1]
    assert dec.op_win_min == pytest.approx(1 / 3)
    assert not dec.decided
    # one note per undecided width (3 stages) and per stage with undecided layers (2)
    assert len(dec.undecided) == 5
    # and one structured choice per undecided width (3) and per undecided layer (3)
    assert [c.kind for c in dec.choices] == ["width", "width", "op", "op", "width", "op"]
    assert all("no clear choice" in n and "arbitrary" in n for n in dec.undecided)
    assert any(n.startswith("stage 3: no clear choice of op in every layer") for n in dec.undecided)


def test_one_hot_choices_are_decided():
    space = small_space()
    op_probs, path_probs = one_hot(space, torch.Generator().manual_seed(1))
    d = derive(space, op_probs, path_probs, INPUT, 3)
    dec = measure(space, d.path, op_probs, path_probs, 0.6)
    assert dec.decided and dec.undecided == ()
    assert dec.op_win_min == 1.0 and dec.width_win_min == 1.0
    assert dec.to_dict()["decided"] is True


def test_threshold_separates_a_clear_winner_from_a_near_tie():
    space = small_space()
    op_probs, path_probs = one_hot(space, torch.Generator().manual_seed(2))
    d = derive(space, op_probs, path_probs, INPUT, 3)
    node = d.path[1]
    op_probs[1][node, 0] = torch.tensor([0.62, 0.2, 0.18])  # decided at 0.6
    op_probs[1][node, 1] = torch.tensor([0.3, 0.38, 0.32])  # a near tie
    dec = measure(space, d.path, op_probs, path_probs, 0.6)
    assert dec.op_win[1] == pytest.approx((0.62, 0.38))
    assert dec.undecided == (
        "stage 3: no clear choice of op in some layers: layer 2 "
        "(dil2 at 0.38); threshold 0.60, the derived ops there are arbitrary",
    )
    # The structured record of that near tie: its winner and its runner-up.
    (c,) = dec.choices
    assert (c.kind, c.stage, c.row, c.layer, c.winner, c.runner_up) == ("op", 1, node, 1, 1, 2)
    assert c.label == "stage 3 layer 2" and c.names == ("dil2", "skip")


def test_fixed_choices_are_not_counted():
    space = small_space(ops=("dil1",))  # one op: no op choice anywhere
    op_probs, path_probs = uniform(space)
    d = derive(space, op_probs, path_probs, INPUT, 3)
    dec = measure(space, d.path, op_probs, path_probs, 0.6)
    assert dec.op_win == ((), (), ()) and dec.op_win_min is None
    assert all("width" in n for n in dec.undecided)


def test_shuffled_labels_permute_labels_and_keep_videos():
    part = VideoIndex([VideoRecord(f"v{i}.avi", i % 4) for i in range(40)], list("abcd"))
    a = shuffled_labels(part, 0, "train")
    assert [r.path for r in a.records] == [r.path for r in part.records]
    assert sorted(r.label for r in a.records) == sorted(r.label for r in part.records)
    assert [r.label for r in a.records] != [r.label for r in part.records]
    assert a.records == shuffled_labels(part, 0, "train").records  # seeded
    assert a.records != shuffled_labels(part, 1, "train").records


def test_a_short_search_reports_itself_undecided(finished_search):
    """The tiny search (one search epoch of a few steps) leaves alpha near uniform:
    every output must say the derived choices are arbitrary."""
    out, result = finished_search
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    for key in ("op_win", "op_win_min", "width_win", "width_win_min", "derived_changed"):
        assert key in rows[-1], key
    assert rows[-1]["op_win_min"] < 0.6 and rows[-1]["undecided"] > 0
    meta = ArchSpec.load(out / "arch.json").meta["x-search"]["decisiveness"]
    assert meta == result.verdict.to_dict()
    assert meta["decided"] is False and meta["undecided"] == list(result.verdict.undecided)
    assert meta["settled"] is False  # 2 epochs: fewer than the 3 settling needs
    assert meta["verdict"] == "undecided"
    inference = json.loads((out / "split.json").read_text())
    assert meta["heldout"]["clips"] == len(inference["parts"]["inference"])
    validate = json.loads((out / "split.json").read_text())["parts"]["validate"]
    assert meta["validate_gain"]["clips"] == len(validate)
    effects = meta["undecided_effects"]  # one per undecided choice, forced either way
    choices = result.verdict.decisiveness.choices
    assert [e["choice"] for e in effects] == [c.label for c in choices]
    assert effects and all(e["clips"] == meta["heldout"]["clips"] for e in effects)
    report = (out / "report.md").read_text()
    assert "Did the search decide?" in report and "did not decide everything" in report
    assert "no clear choice" in report and "Each undecided choice forced either way" in report


def test_a_network_that_changed_in_the_last_epochs_is_unsettled():
    history = [{"epoch": e, "derived_changed": e in (2, 4)} for e in range(1, 6)]
    # Epoch 4's network differs from epoch 3's: the last 3 epochs are not all the same.
    assert unsettled_epochs(history) == [4]
    history[-1]["derived_changed"] = True
    assert unsettled_epochs(history) == [4, 5]
    assert unsettled_epochs([{"epoch": e, "derived_changed": e == 1} for e in range(1, 6)]) == []


def _batches(n_batches: int, batch: int, seed: int) -> list[dict]:
    gen = torch.Generator().manual_seed(seed)
    return [
        {
            "clip": torch.randn(batch, *INPUT, generator=gen),
            "label": torch.randint(0, CLASSES, (batch,), generator=gen),
        }
        for _ in range(n_batches)
    ]


def test_heldout_gain_is_zero_for_uniform_alpha_and_leaves_the_supernet_as_it_was():
    torch.manual_seed(0)
    sn = Supernet(small_space(), INPUT, CLASSES, residual_scale=1.0)
    sn.eval()
    batches = _batches(3, 4, seed=1)
    val = _batches(2, 4, seed=2)
    h = heldout_gain(sn, batches, val, CPU)
    # Uniform alpha and beta are the "learned" ones: both passes are the same forward.
    assert (h["gain"], h["se"], h["clips"]) == (0.0, 0.0, 12) and not confirmed(h)
    assert h["uncalibrated"] == {"gain": 0.0, "se": 0.0}
    assert h["temperature"]["learned"] == h["temperature"]["uniform"] >= 1.0
    assert h["validate"] == {"gain": 0.0, "se": 0.0, "clips": 8}

    with torch.no_grad():
        for p in sn.arch_parameters():
            p.copy_(torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())) * 3)
    before = {k: v.clone() for k, v in sn.state_dict().items()}
    h = heldout_gain(sn, batches, val, CPU)
    assert h["clips"] == 12 and h["gain"] != 0.0 and h["se"] > 0
    after = sn.state_dict()
    for k, v in before.items():  # alpha, beta, weights and BN running statistics
        assert torch.equal(after[k], v), k
    assert not sn.training  # its mode is put back
    # The same batches give the same figure: a pure function of the final state.
    assert heldout_gain(sn, batches, val, CPU) == h


def _logits(n: int, seed: int, signal: float, scale: float) -> tuple:
    """Labels, and logits ``scale`` x (noise + ``signal`` on the right class)."""
    gen = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, CLASSES, (n,), generator=gen)
    noise = torch.randn(n, CLASSES, generator=gen, dtype=torch.float64)
    return scale * (noise + signal * nn.functional.one_hot(labels, CLASSES)), labels


def test_calibration_removes_a_gain_that_is_only_less_overconfidence():
    """A memorising shuffled-label supernet is overconfident on unseen videos, more so
    under the uniform mixture than under its fitted architecture: lower cross-entropy
    without any signal (docs/results.md, "A calibrated held-out check")."""
    sets = []
    for seed in (1, 2):  # held-out, validate
        learned, labels = _logits(400, seed, signal=0.0, scale=1.0)
        uniform, _ = _logits(400, seed + 10, signal=0.0, scale=4.0)
        uniform = uniform[:, torch.randperm(CLASSES, generator=torch.Generator().manual_seed(0))]
        sets.append((learned, uniform, labels))
    h = calibrated_gain(*sets)
    assert h["uncalibrated"]["gain"] > 4 * h["uncalibrated"]["se"]  # passes uncalibrated
    assert not confirmed(h) and abs(h["gain"]) < 0.05
    assert h["temperature"]["uniform"] >= h["temperature"]["learned"] > 1.0  # both softened


def test_calibration_keeps_a_gain_that_is_signal():
    sets = []
    for seed in (1, 2):
        learned, labels = _logits(400, seed, signal=3.0, scale=1.0)
        uniform, _ = _logits(400, seed, signal=0.5, scale=1.0)
        sets.append((learned, uniform, labels))
    h = calibrated_gain(*sets)
    assert confirmed(h) and h["gain"] > 0.5
    assert h["temperature"]["learned"] == 1.0  # sharp and right: never sharpened further


def test_a_choice_the_data_cannot_tell_apart_measures_no_difference_but_its_cost():
    """With every residual block starting as the identity (residual_scale 0), every
    op computes the same function: forcing an undecided layer either way changes
    nothing the data can see, only the cost."""
    torch.manual_seed(0)
    space = small_space()
    sn = Supernet(space, INPUT, CLASSES, residual_scale=0.0)
    op_probs, path_probs = uniform(space)
    for p in op_probs:  # every layer: dil1 0.45, dil2 0.15, skip 0.40 (skip the runner-up)
        p[:] = torch.tensor([0.45, 0.15, 0.40])
    d = derive(space, op_probs, path_probs, INPUT, 3)
    dec = measure(space, d.path, op_probs, path_probs, 0.6)
    op_choices = [c for c in dec.choices if c.kind == "op"]
    before = {k: v.clone() for k, v in sn.state_dict().items()}
    effects = choice_effects(sn, op_choices, _batches(2, 4, seed=3), CPU)
    assert [e["choice"] for e in effects] == [c.label for c in op_choices]
    for e, c in zip(effects, op_choices):
        assert e["ce_diff"] == 0.0 and e["se"] == 0.0 and e["clips"] == 8
        assert (e["winner"], e["runner_up"]) == (space.ops[c.winner], space.ops[c.runner_up])
        assert (e["winner"], e["runner_up"]) == ("dil1", "skip") and e["gmacs_diff"] < 0
    for k, v in before.items():
        assert torch.equal(sn.state_dict()[k], v), k


def test_forcing_a_width_measures_a_difference_when_the_widths_differ():
    torch.manual_seed(0)
    space = small_space()
    sn = Supernet(space, INPUT, CLASSES, residual_scale=1.0)
    op_probs, path_probs = uniform(space)
    d = derive(space, op_probs, path_probs, INPUT, 3)
    widths = [
        c for c in measure(space, d.path, op_probs, path_probs, 0.6).choices if c.kind == "width"
    ]
    batches = _batches(2, 4, seed=3)
    effects = choice_effects(sn, widths, batches, CPU)
    assert len(effects) == 3 and all(e["se"] > 0 for e in effects)
    # Uniform beta: the winner is the first (narrowest) width, the runner-up the next,
    # wider one, which costs more.
    assert all(e["gmacs_diff"] > 0 for e in effects)
    # The first choice's difference, computed here on its own: beta's row forced
    # one-hot on each option, every batch on its own BatchNorm statistics.
    c = widths[0]
    ces = []
    for option in (c.winner, c.runner_up):
        sn.train()
        with torch.no_grad(), frozen_bn_stats(sn):
            beta = sn.betas[c.stage]
            saved = beta.detach().clone()
            beta[c.row] = -1e4
            beta[c.row, option] = 0.0
            logits = torch.cat([sn(b["clip"]) for b in batches])
            beta.copy_(saved)
        labels = torch.cat([b["label"] for b in batches])
        ces.append(nn.functional.cross_entropy(logits.double(), labels, reduction="none"))
    expected = float((ces[1] - ces[0]).mean())
    assert effects[0]["ce_diff"] == pytest.approx(expected, rel=1e-4, abs=1e-6)


# ---------------------------------------------------------------------- the verdict
# Driven by measured inputs: probabilities through ``measure``, a history of derived
# networks, and held-out logits through ``calibrated_gain``.


def _probabilities(decided: bool):
    space = small_space()
    if decided:
        op_probs, path_probs = one_hot(space, torch.Generator().manual_seed(1))
    else:
        op_probs, path_probs = uniform(space)
    d = derive(space, op_probs, path_probs, INPUT, 3)
    return measure(space, d.path, op_probs, path_probs, 0.6)


def _history(changed: tuple[int, ...] = (), epochs: int = 5) -> list[dict]:
    return [{"epoch": e, "derived_changed": e in changed} for e in range(1, epochs + 1)]


def _heldout(signal: bool) -> dict:
    """A real search's held-out logits (signal under the learned architecture), or a
    memorising null's (none, only less overconfidence than the uniform mixture)."""
    sets = []
    for seed in (1, 2):  # held-out, validate
        if signal:
            learned, labels = _logits(400, seed, signal=3.0, scale=1.0)
            flat, _ = _logits(400, seed, signal=0.5, scale=1.0)
        else:
            learned, labels = _logits(400, seed, signal=0.0, scale=1.0)
            flat, _ = _logits(400, seed + 10, signal=0.0, scale=4.0)
        sets.append((learned, flat, labels))
    return calibrated_gain(*sets)


@pytest.mark.parametrize(
    ("decided", "changed", "epochs", "signal", "outcome"),
    [
        (True, (), 5, True, "decided"),
        (False, (), 5, True, "undecided"),
        (True, (5,), 5, True, "not settled"),
        (True, (), 2, True, "not settled"),  # too few epochs to have settled
        (True, (), 5, False, "not confirmed"),
        (False, (5,), 5, False, "undecided"),  # undecided is said first
        (True, (4,), 5, False, "not settled"),  # then not settled
    ],
)
def test_the_verdict_has_four_outcomes_from_measured_inputs(
    decided, changed, epochs, signal, outcome
):
    history = _history(changed, epochs)
    v = Verdict.measure(_probabilities(decided), history, _heldout(signal))
    assert v.outcome == outcome
    assert v.to_dict()["verdict"] == outcome and v.decided is (outcome == "decided")
    heading = {
        "decided": "**Decided**",
        "undecided": "did not decide everything",
        "not settled": "**Not settled**",
        "not confirmed": "**Not confirmed**",
    }
    text = "\n".join(verdict_section(v, history))
    assert [h for h in heading.values() if h in text] == [heading[outcome]]
    assert verdict_line(v).startswith(f"verdict:       {outcome} (")
    assert terminal_lines(v)[-1] == verdict_line(v)


def test_the_held_out_lines_say_what_was_measured():
    history = _history()
    null = Verdict.measure(_probabilities(True), history, _heldout(False))
    h = null.heldout
    text = "\n".join(verdict_section(null, history))
    assert f"{h['gain']:+.3f} +- {h['se']:.3f}" in text
    assert f"validate split ({null.validate_gain['clips']} videos" in text
    t = h["temperature"]
    assert f"{t['learned']:.2f} for the learned alpha and beta, {t['uniform']:.2f} for" in text
    assert heldout_line(null).startswith("held-out:      not confirmed")
    real = Verdict.measure(_probabilities(True), history, _heldout(True))
    assert heldout_line(real).startswith("held-out:      confirmed")
    assert settled_line(real).startswith("settled:")
    assert "changed after epoch(s) 5" in settled_line(
        Verdict.measure(_probabilities(True), _history((5,)), _heldout(True))
    )
    assert "fewer than 3 epochs" in settled_line(
        Verdict.measure(_probabilities(True), _history(epochs=2), _heldout(True))
    )
    assert not confirmed(None) and not confirmed({"gain": None, "se": None, "clips": 1})
    unmeasured = Verdict.measure(_probabilities(True), history, None)
    assert heldout_line(unmeasured).startswith("held-out:      not measured")
    assert unmeasured.outcome == "not confirmed"


def test_the_report_says_what_forcing_an_undecided_choice_changes():
    history = [{"epoch": e, "derived_changed": False} for e in range(1, 6)]
    effects = [
        {
            "choice": "stage 3 width",
            "winner": "18",
            "runner_up": "28",
            "ce_diff": 0.002,
            "se": 0.003,
            "clips": 144,
            "gmacs_diff": 0.0003,
        },
        {
            "choice": "stage 5 layer 1",
            "winner": "skip",
            "runner_up": "dil2",
            "ce_diff": -0.2,
            "se": 0.05,
            "clips": 144,
            "gmacs_diff": 0.001,
        },
    ]
    v = Verdict.measure(_probabilities(decided=False), history, _heldout(True), effects)
    text = "\n".join(verdict_section(v, history))
    assert "- stage 3 width: 28 instead of 18: +0.002 +- 0.003 nats a clip (no measurable " in text
    assert "+0.0003 GMACs" in text
    assert "- stage 5 layer 1: dil2 instead of skip: -0.200 +- 0.050 nats a clip (dil2 " in text
    assert "(dil2 predicts better); +0.0010 GMACs" in text
    lines = terminal_lines(v)  # the terminal says the same, line for line
    assert (
        "  - stage 3 width: 28 instead of 18: +0.002 +- 0.003 nats a clip (no measurable "
        "difference: the data do not tell them apart); +0.0003 GMACs" in lines
    )
