"""The training-free scores and the rank correlation the bench reports."""

from __future__ import annotations

import math

import pytest
import torch

from tests.conftest import tiny
from vidnas.models.archs import baseline_spec
from vidnas.models.space import SearchSpace
from vidnas.nas.proxies import kendall_tau, naswot, training_free_scores


@pytest.mark.parametrize(
    ("x", "y", "tau"),
    [
        ([1, 2, 3, 4], [10, 20, 30, 40], 1.0),
        ([1, 2, 3, 4], [4, 3, 2, 1], -1.0),
        # 5 concordant pairs, 1 discordant: (5 - 1) / 6
        ([1, 2, 3, 4], [1, 3, 2, 4], 4 / 6),
        # one tie on each side: tau-b = 4 / sqrt((6 - 1) * (6 - 1))
        ([1, 1, 2, 3], [1, 2, 3, 3], 0.8),
    ],
)
def test_kendall_tau_b_on_rankings_counted_by_hand(x, y, tau):
    assert kendall_tau(x, y) == pytest.approx(tau)


def test_kendall_tau_has_no_value_without_a_ranking():
    assert kendall_tau([1, 1, 1], [1, 2, 3]) is None
    assert kendall_tau([1.0], [2.0]) is None
    with pytest.raises(ValueError):
        kendall_tau([1, 2], [1, 2, 3])


@pytest.fixture(scope="module")
def spec():
    cfg = tiny()
    return baseline_spec(SearchSpace.from_config(cfg.space), cfg.input, 4)


def test_naswot_is_seeded_order_free_and_leaves_the_global_generator_alone(spec):
    clips = torch.randn(6, 3, 8, 32, 32, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    score = naswot(spec, clips)
    assert torch.rand(1) == expected_next  # the caller's generator drew nothing
    assert math.isfinite(score)
    assert naswot(spec, clips) == score
    assert naswot(spec, clips[torch.tensor([3, 1, 5, 0, 2, 4])]) == pytest.approx(score, rel=1e-9)


def test_naswot_cannot_tell_identical_clips_apart(spec):
    """Identical clips switch on the same units: a kernel of rank one."""
    clip = torch.randn(1, 3, 8, 32, 32, generator=torch.Generator().manual_seed(1))
    assert naswot(spec, clip.expand(4, -1, -1, -1, -1).contiguous()) == -math.inf


def test_training_free_scores_are_the_specs_cost_and_naswot(spec):
    from vidnas.models.cost import network_cost

    clips = torch.randn(4, 3, 8, 32, 32, generator=torch.Generator().manual_seed(2))
    scores = training_free_scores(spec, clips)
    cost = network_cost(spec)
    assert scores == {"params": cost.params, "macs": cost.macs, "naswot": naswot(spec, clips)}
