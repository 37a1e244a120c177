"""``vidnas bench`` end to end on a toy population (tiny preset): every row it
promises, figures that follow from its own results, and a rerun that reuses them."""

from __future__ import annotations

import json
import statistics

import pytest

from tests.conftest import run_cli, tiny
from vidnas.apps.bench import BenchSettings, run_bench

TARGET = 0.0018  # GMACs: the tiny space's median at its input


@pytest.mark.slow
def test_bench_runs_every_row_reports_what_its_rows_say_and_reuses_them(tmp_path, data_root):
    cfg = tiny(data_root, "test.clips=1", "test.crops=1")
    settings = BenchSettings(
        target_gmacs=TARGET, population=3, seeds=(0,), search_seeds=(0,), ws_samples=3, workers=2
    )
    out = tmp_path / "bench"
    res = run_bench(cfg, out, settings, progress=False)
    rows = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]

    # Every network of every group, from scratch and from the supernet's weights.
    by = {
        (g, init): [r for r in rows if (r["group"], r["init"]) == (g, init)]
        for g, init in {(r["group"], r["init"]) for r in rows}
    }
    groups = {"population": 3, "r2plus1d": 1, "hand": 1, "searched": 1, "random-ws": 1}
    assert {k: len(v) for k, v in by.items()} == {
        (g, init): n for g, n in groups.items() for init in (False, True)
    }
    # The population and random search's candidates are at the target cost.
    for r in by[("population", False)] + by[("random-ws", False)]:
        assert abs(r["gmacs"] - TARGET) <= 0.1 * TARGET + 1e-12, r["arch_name"]

    # The summary is what the rows say.
    summary = json.loads((out / "bench.json").read_text())
    assert summary == res.summary
    scratch = summary["comparisons"]["scratch"]
    pop = sorted(r["top1"] for r in by[("population", False)])
    assert scratch["groups"]["population"]["mean"] == pytest.approx(statistics.mean(pop))
    assert scratch["groups"]["population"]["std"] == pytest.approx(statistics.stdev(pop))
    assert scratch["population_percentiles"]["50"] == pytest.approx(pop[1])
    (searched,) = by[("searched", False)]
    beaten = sum(p < searched["top1"] for p in pop) + 0.5 * sum(p == searched["top1"] for p in pop)
    assert scratch["searched_percentile"] == {
        searched["arch_name"]: pytest.approx(100 * beaten / 3)
    }
    assert set(summary["comparisons"]) == {"scratch", "supernet"}

    # The search ran in budget mode at the target; the null ran on shuffled labels
    # with no cost term, and both verdicts are reported.
    assert abs(summary["derived_gmacs"]["s0"] - TARGET) <= 0.1 * TARGET + 1e-9
    null_cfg = (out / "search" / "null0" / "config.yaml").read_text()
    assert "shuffle_labels: true" in null_cfg and "cost_lambda: 0.0" in null_cfg
    assert set(summary["verdicts"]) == {"s0", "null0"}

    # Ranking: each estimate against the members' stand-alone accuracy.
    rank = summary["ranking"]
    assert rank["accuracy"] == [
        next(r["top1"] for r in by[("population", False)] if r["arch_name"] == m)
        for m in rank["members"]
    ]
    assert set(rank["tau"]) >= {"supernet", "params", "macs", "naswot"}
    for name, tau in rank["tau"].items():
        assert tau is None or -1 <= tau <= 1, name
        assert len(rank["estimates"][name]) == 3

    table = (out / "table.md").read_text()
    assert f"| uniform random, same cost | 3 | {100 * statistics.mean(pop):.1f}" in table
    assert "Kendall's tau" in table and (out / "accuracy_vs_gmacs.png").stat().st_size > 0

    # Run again through the CLI: nothing is retrained, the same table comes out.
    before = (out / "results.jsonl").read_text()
    args = ["bench", "--config", "tiny", "--out", str(out), "--target", str(TARGET)]
    done = run_cli(
        *args,
        "--population",
        "3",
        "--seeds",
        "0",
        "--search-seeds",
        "0",
        "--ws-samples",
        "3",
        "--no-progress",
        f"data.root={data_root}",
        "test.clips=1",
        "test.crops=1",
    )
    assert done.returncode == 0, done.stderr
    assert "0 retraining jobs to run" in done.stderr
    assert (out / "results.jsonl").read_text() == before
    assert (out / "table.md").read_text() == table
