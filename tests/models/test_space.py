from __future__ import annotations

import math

import pytest

from tests.conftest import run_cli, tiny
from vidnas.config import ConfigError, SpaceConfig, StageSpace, load_config
from vidnas.models.ops import op_dilation
from vidnas.models.space import SearchSpace


def test_paper_space_size_and_depth():
    space = SearchSpace.from_config(load_config("paper").space)
    assert space.width_choices == 1296
    assert space.op_choices == 4**26
    assert space.size == 5836665117072162816
    assert space.num_conv_layers == 33
    assert space.total_stride == 32
    # Distinct networks: for a stage of L layers, sum_k 3^k op sequences survive skip removal.
    expect = 1296
    for layers in (0, 5, 10, 5, 5, 1):
        expect *= sum(3**k for k in range(layers + 1))
    assert space.distinct_networks == expect


def test_width_multiplier_rounds_and_must_keep_candidates_distinct():
    space = SearchSpace.from_config(load_config("cpu-small").space)
    assert space.stem_width == 8
    assert space.stages[0].widths == (12, 14, 16)
    assert space.stages[5].widths == (120, 124, 128)
    with pytest.raises(ConfigError, match="not distinct after width_multiplier"):
        SearchSpace.from_config(SpaceConfig(width_multiplier=0.05))


def test_ops_are_named_dilations():
    assert op_dilation("dil1") == 1 and op_dilation("dil12") == 12
    assert op_dilation("skip") is None
    for bad in ("dil0", "dil", "conv3", "Dil1"):
        with pytest.raises(ValueError, match="unknown op"):
            op_dilation(bad)
    with pytest.raises(ConfigError, match="listed twice"):
        SearchSpace.from_config(SpaceConfig(ops=["dil1", "dil1"]))
    with pytest.raises(ConfigError, match="op set is empty"):
        SearchSpace.from_config(SpaceConfig(ops=[]))
    with pytest.raises(ConfigError, match="stride: must be 1 or 2"):
        SearchSpace.from_config(SpaceConfig(stages=[StageSpace([8], 1, 3)]))


@pytest.mark.parametrize(
    ("channels", "ops", "depth", "expected_ops", "widths"),
    [
        (True, True, True, ("dil1", "dil2", "dil4", "skip"), 1296),
        (True, False, False, ("dil1",), 1296),
        (False, True, False, ("dil1", "dil2", "dil4"), 1),
        (False, False, True, ("dil1", "skip"), 1),
        (True, False, True, ("dil1", "skip"), 1296),
    ],
)
def test_restrict_matches_the_ablation_rules(channels, ops, depth, expected_ops, widths):
    space = SearchSpace.from_config(load_config("paper").space)
    on = {"channels": channels, "ops": ops, "depth": depth}
    sub = space.restrict([d for d, searched in on.items() if searched])
    assert sub.ops == expected_ops
    assert sub.width_choices == widths
    if not channels:
        assert [st.widths for st in sub.stages] == [(56,), (96,), (160,), (208,), (272,), (496,)]
    assert sub.size == widths * len(expected_ops) ** 26
    assert math.prod(len(s.widths) for s in sub.stages) == widths


def test_cli_prints_the_paper_count():
    out = run_cli("space", "--config", "paper").stdout
    assert "5836665117072162816" in out
    assert "conv layers (stem + transitions + stack layers): 33" in out


def test_cli_names_the_bad_key():
    res = run_cli("space", "space.stages.0.widths=[]")
    assert res.returncode == 2
    assert "space.stages.0.widths: the candidate list is empty" in res.stderr


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("space.stages.1.widths=[]", "space.stages.1.widths: the candidate list is empty"),
        ("space.stages.1.max_layers=-1", "space.stages.1.max_layers: must be >= 0"),
        ("space.ops=[dil1,conv5]", "space.ops.1: unknown op 'conv5'"),
        ("space.width_multiplier=0.01", "space.stem_width: width 32 x multiplier 0.01 rounds to 0"),
        ("input=3x16x16x16", "input: 16x16 frames are too small for this space"),
    ],
)
def test_bad_spaces_name_the_key(override, message):
    """The space validates itself (config imports no other module): a bad space is
    refused when it is built, before any run starts (tests/nas/test_search.py)."""
    cfg = tiny(None, override)
    with pytest.raises(ConfigError) as err:
        SearchSpace.from_config(cfg.space).check_input(cfg.input)
    assert message in str(err.value)
