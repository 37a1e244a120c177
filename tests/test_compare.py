from __future__ import annotations

import pytest
import torch

from vidnas.compare import NoSameCostArchitectures, _sample_within
from vidnas.cost import network_cost
from vidnas.derive import sample_derivation
from vidnas.search import search_space


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
