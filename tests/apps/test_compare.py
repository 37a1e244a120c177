from __future__ import annotations

import pytest
import torch

from tests.conftest import cli
from vidnas.apps.compare import NoSameCostArchitectures, _sample_within
from vidnas.models.cost import network_cost
from vidnas.models.space import search_space
from vidnas.nas.derive import sample_derivation


def test_random_architectures_are_drawn_within_the_cost_band(tiny_cfg):
    space = search_space(tiny_cfg)
    gen = torch.Generator().manual_seed(0)
    target = network_cost(sample_derivation(space, tiny_cfg.input, 4, gen).spec).macs
    archs = _sample_within(space, tiny_cfg, 4, target, 0.1, gen, 5)
    assert len(archs) == 5
    assert all(abs(network_cost(d.spec).macs - target) <= 0.1 * target for d in archs)


def test_a_cost_uniform_sampling_cannot_reach_is_a_clear_error(tiny_cfg):
    # Below the cheapest network of the space (the searched net could sit at its edge):
    # the sampler gives up after max_tries and says how to go on, instead of looping.
    space = search_space(tiny_cfg)
    gen = torch.Generator().manual_seed(0)
    with pytest.raises(NoSameCostArchitectures, match="--tolerance"):
        _sample_within(space, tiny_cfg, 4, 1000, 0.1, gen, 1, max_tries=50)


@pytest.mark.slow
def test_compare_keeps_every_other_row_when_the_cost_band_is_out_of_reach(tmp_path, data_root):
    # A tolerance no uniform sample meets: the searches, retrains and baseline rows are
    # all written, and table.md says why the random rows are missing.
    out = tmp_path / "cmp"
    args = ["--seeds", "0", "--random", "1", "--ws-samples", "2", "--no-progress"]
    overrides = [f"data.root={data_root}", "runtime.threads=1"]
    res = cli(
        "compare", "--config", "tiny", "--out", str(out), *args, "--tolerance", "1e-9", *overrides
    )
    assert res.returncode == 0, res.stderr[-2000:]
    table = (out / "table.md").read_text()
    for title in (
        "searched (vidnas), from scratch",
        "from the supernet's weights",
        "r2plus1d-baseline",
        "hand-designed, same cost",
    ):
        assert title in table
    assert "uniform random" not in table and "weight sharing |" not in table
    assert "No random rows: only 0 of 20000 uniform samples" in table
    assert (out / "accuracy_vs_gmacs.png").stat().st_size > 0
