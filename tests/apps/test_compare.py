"""`vidnas compare`: the same-cost sampler, the comparison end to end (every kind of
row, out of reach and within it) and the ablation of searched dimensions."""

from __future__ import annotations

import functools
import json
import re
import statistics
from pathlib import Path
from typing import Any

import pytest
import torch

from tests.conftest import copy_run, run_cli
from vidnas.apps import compare, evaluate
from vidnas.apps.population import NoSameCostArchitectures, sample_within
from vidnas.config import load_config
from vidnas.models.cost import network_cost
from vidnas.models.space import search_space
from vidnas.models.spec import ArchSpec
from vidnas.nas.derive import sample_derivation
from vidnas.report import plots


def test_random_architectures_are_drawn_within_the_cost_band(tiny_cfg):
    space = search_space(tiny_cfg)
    gen = torch.Generator().manual_seed(0)
    target = network_cost(sample_derivation(space, tiny_cfg.input, 4, gen).spec).macs
    archs = sample_within(space, tiny_cfg, 4, target, 0.1, gen, 5)
    assert len(archs) == 5
    assert all(abs(network_cost(d.spec).macs - target) <= 0.1 * target for d in archs)


def test_a_cost_uniform_sampling_cannot_reach_is_a_clear_error(tiny_cfg):
    # Below the cheapest network of the space (the searched net could sit at its edge):
    # the sampler gives up after max_tries and says how to go on, instead of looping.
    space = search_space(tiny_cfg)
    gen = torch.Generator().manual_seed(0)
    with pytest.raises(NoSameCostArchitectures, match="--tolerance"):
        sample_within(space, tiny_cfg, 4, 1000, 0.1, gen, 1, max_tries=50)


# --------------------------------------------------------------------------- end to end

# Every network is retrained one epoch and tested on one view a video: the figures
# are meaningless, what is tested is that each row is made and tabulated right.
FAST = ["runtime.threads=1", "train.epochs=1", "test.clips=1", "test.crops=1"]


def _no_run_figures(monkeypatch: pytest.MonkeyPatch) -> None:
    """Skip drawing each search's and retraining's PNGs: most of a tiny run's time,
    and nothing these tests read (the comparison's own figure is still drawn)."""
    for name in ("plot_search", "plot_curves", "plot_arch"):
        monkeypatch.setattr(plots, name, lambda *a, **k: None)
    monkeypatch.setattr(evaluate, "plot_confusion", lambda *a, **k: None)


def _results(out: Path) -> dict[str, dict[str, Any]]:
    rows = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    return {r["run"]: r for r in rows}


def _table_rows(table: str) -> dict[str, list[str]]:
    """The markdown table's body: first cell -> the other cells."""
    rows = {}
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and not line.startswith("|---") and cells[0] not in ("", "network"):
            rows[cells[0]] = cells[1:]
    return rows


def _mean_std(cell: str) -> tuple[float, float | None]:
    m = re.fullmatch(r"(-?[\d.]+)(?: ± ([\d.]+))?", cell)
    assert m, cell
    return float(m.group(1)), None if m.group(2) is None else float(m.group(2))


def _check_cell(cell: str, xs: list[float], digits: int) -> None:
    """``cell`` is the mean (and, over several runs, the standard deviation) of ``xs``
    to ``digits`` decimals."""
    mean, std = _mean_std(cell)
    half = 0.5 * 10**-digits + 1e-9
    assert mean == pytest.approx(statistics.mean(xs), abs=half), (cell, xs)
    if len(xs) == 1:
        assert std is None, cell
    else:
        assert std == pytest.approx(statistics.stdev(xs), abs=half), (cell, xs)


def _row_matches_its_run(out: Path, row: dict[str, Any]) -> None:
    """A results row holds what its own retraining and test wrote."""
    run = out / "train" / row["run"]
    test = json.loads((run / "test" / "test_metrics.json").read_text())
    for key, test_key in (
        ("top1", "top1"),
        ("top5", "top5"),
        ("views", "views"),
        ("gmacs", "gmacs_per_view"),
        ("params", "params"),
    ):
        assert row[key] == test[test_key], (row["run"], key)
    assert row["arch"] == json.loads((run / "arch.json").read_text())
    assert row["gmacs"] * 1e9 == pytest.approx(network_cost(ArchSpec.from_dict(row["arch"])).macs)


def test_compare_makes_random_and_weight_sharing_rows_and_tabulates_their_mean_and_std(
    tmp_path, data_root, finished_search, monkeypatch
):
    _no_run_figures(monkeypatch)
    out = tmp_path / "cmp"
    # The comparison reads back a finished search of its seed rather than running one.
    copy_run(finished_search[0], out / "search" / "s0")
    # One thread, like every run here: tiny tensors gain nothing from a second.
    torch.set_num_threads(1)
    # A band no draw meets is found out by the sampler's budget; 200 draws show it as
    # well as the default 20 000, in a hundredth of the time.
    monkeypatch.setattr(compare, "sample_within", functools.partial(sample_within, max_tries=200))
    common = ["compare", "--config", "tiny", "--out", str(out), "--seeds", "0", "--no-progress"]
    common += ["--random", "2", "--ws-samples", "3", f"data.root={data_root}", *FAST]

    # Out of reach: every other row is made, and the table says why the random ones are not.
    res = run_cli(*common, "--tolerance", "1e-9")
    assert res.returncode == 0, res.stderr[-2000:]
    table = (out / "table.md").read_text()
    assert list(_table_rows(table)) == [
        "searched (vidnas), from scratch",
        "searched, from the supernet's weights",
        "r2plus1d-baseline",
        "hand-designed, same cost (dilations 1, 2, 4)",
    ]
    assert "No random rows: only 0 of 200 uniform samples" in table
    first = _results(out)
    assert sorted(first) == ["hand/s0", "r2plus1d/s0", "searched+init/s0", "searched/s0"]

    # Within reach (any network up to twice the searched cost): two random rows and the
    # weight-sharing row join; the rows already made are reused, not retrained.
    res = run_cli(*common, "--tolerance", "1.0")
    assert res.returncode == 0, res.stderr[-2000:]
    rows = _results(out)
    assert {k: rows[k] for k in first} == first
    assert sorted(rows) == sorted([*first, "random/a0-s0", "random/a1-s0", "random-ws/s0"])
    for row in rows.values():
        _row_matches_its_run(out, row)
    target = rows["searched/s0"]["gmacs"]
    for key in ("random/a0-s0", "random/a1-s0", "random-ws/s0"):
        assert 0 < rows[key]["gmacs"] <= 2 * target + 1e-12, key
    assert rows["random/a0-s0"]["arch"]["name"] == "random-0"
    assert rows["random/a1-s0"]["arch"]["name"] == "random-1"
    ws = rows["random-ws/s0"]
    assert ws["ws_candidates"] == 3 and 0 <= ws["ws_score"] <= 1 and ws["ws_seconds"] >= 0

    table = (out / "table.md").read_text()
    assert table in res.stdout
    titles = {
        "searched": "searched (vidnas), from scratch",
        "searched+init": "searched, from the supernet's weights",
        "r2plus1d": "r2plus1d-baseline",
        "hand": "hand-designed, same cost (dilations 1, 2, 4)",
        "random": "uniform random, same cost ±100%",
        "random-ws": "random search + weight sharing",
    }
    body = _table_rows(table)
    assert list(body) == list(titles.values())
    for group, title in titles.items():
        g = [r for r in rows.values() if r["group"] == group]
        archs, runs, top1, top5, gmacs, params, seconds = body[title]
        assert int(archs) == len({json.dumps(r["arch"]["stages"]) for r in g}), group
        assert int(runs) == len(g), group
        _check_cell(top1, [100 * r["top1"] for r in g], 2)
        _check_cell(top5, [100 * r["top5"] for r in g], 2)
        _check_cell(gmacs, [r["gmacs"] for r in g], 4)
        _check_cell(params, [r["params"] / 1e6 for r in g], 2)
        _check_cell(seconds, [r["train_seconds"] for r in g], 2)
    assert "No random rows" not in table
    assert re.search(r"weight-sharing random search adds [\d.]+ s of scoring", table)
    assert (out / "accuracy_vs_gmacs.png").stat().st_size > 0


# A toy space: two stages of two widths and one layer each, three ops (skip included),
# on 4-frame 16x16 clips, so that each of the seven searches takes a second.
TOY = [
    "input=3x4x16x16",
    "space.stages=[{widths: [48, 64], max_layers: 1, stride: 2},"
    " {widths: [96, 128], max_layers: 1, stride: 2}]",
    "space.ops=[dil1, dil2, skip]",
]


def test_ablation_searches_each_subset_of_dimensions_and_tabulates_it(
    tmp_path, data_root, monkeypatch
):
    _no_run_figures(monkeypatch)
    out = tmp_path / "ablation"
    res = run_cli(
        "compare",
        "--ablation",
        "--config",
        "tiny",
        "--out",
        str(out),
        "--seeds",
        "0",
        "--no-progress",
        f"data.root={data_root}",
        *TOY,
        *FAST,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    rows = _results(out)
    names = ["C", "O", "D", "CD", "OD", "CO", "COD"]  # the order of the paper's Table 6
    assert list(rows) == [f"ablation-{n}/s0" for n in names]
    middle = (8, 16)  # the upper middle widths, x 0.125: what a fixed width is
    body = list(_table_rows((out / "table.md").read_text()).values())
    assert len(body) == len(names)
    for name, row, cells in zip(names, rows.values(), body):
        channels, ops, depth = ("C" in name, "O" in name, "D" in name)
        dims = [d for d, on in (("channels", channels), ("ops", ops), ("depth", depth)) if on]
        assert load_config(out / "search" / name / "config.yaml").search.dimensions == dims
        # The derived network lies in the restricted space.
        stages = row["arch"]["stages"]
        if not channels:
            assert tuple(s["width"] for s in stages) == middle, name
        for s in stages:
            if not ops:
                assert set(s["ops"]) <= {"dil1"}, name
            if not depth:
                assert len(s["ops"]) == 1, name  # no layer skipped
        _row_matches_its_run(out, row)
        assert (row["channels"], row["ops"], row["depth"]) == (channels, ops, depth)
        tick = {True: "✓", False: ""}
        assert cells[:3] == [tick[channels], tick[ops], tick[depth]], name
        assert float(cells[3]) == pytest.approx(100 * row["top1"], abs=0.005 + 1e-9)
        assert float(cells[4]) == pytest.approx(row["gmacs"], abs=0.00005 + 1e-12)
