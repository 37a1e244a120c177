"""`vidnas demo` end to end on the tiny preset: search, retrain, test, and what the
terminal says about the search's decision."""

from __future__ import annotations

import json

import pytest

from tests.conftest import run_cli

pytestmark = pytest.mark.slow


def test_demo_runs_the_whole_job_and_says_what_each_undecided_choice_is_worth(tmp_path, data_root):
    out = tmp_path / "demo"
    res = run_cli(
        "demo",
        "--out",
        str(out),
        "--config",
        "tiny",
        "--no-progress",
        f"data.root={data_root}",
        "runtime.threads=1",
    )
    assert res.returncode == 0, res.stderr[-2000:]
    assert "top-1" in res.stdout and "GMACs x views" in res.stdout
    for line in ("settled:", "held-out:", "verdict:", "report:"):
        assert line in res.stdout, line
    arch = json.loads((out / "search" / "arch.json").read_text())
    dec = arch["x-search"]["decisiveness"]
    # Two tiny search epochs decide nothing: every undecided choice gets its line,
    # forced either way, in the order arch.json records them.
    assert dec["undecided"] and dec["undecided_effects"]
    shown = [line for line in res.stdout.splitlines() if " instead of " in line]
    assert [line.split(":")[0].strip(" -") for line in shown] == [
        e["choice"] for e in dec["undecided_effects"]
    ]
    assert all(" GMACs" in line for line in shown)
    assert (out / "report.md").exists()
