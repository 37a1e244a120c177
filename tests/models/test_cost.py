"""The analytic cost model must equal a real counter exactly, block by block."""

from __future__ import annotations

import random

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from vidnas.models import cost
from vidnas.models.archs import resolve_arch
from vidnas.models.network import build_network
from vidnas.models.ops import Classifier, DilatedBlock, Stem, Transition
from vidnas.models.spec import ArchSpec, StageSpec


def counted_macs(module: torch.nn.Module, shape: tuple[int, ...]) -> int:
    """MACs of one forward pass as torch counts them (2 FLOPs per MAC), on the meta device."""
    module = module.to("meta")
    with FlopCounterMode(display=False) as counter:
        module(torch.empty(1, *shape, device="meta"))
    flops = counter.get_total_flops()
    assert flops % 2 == 0
    return flops // 2


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("shape", [(3, 16, 224, 224), (3, 8, 33, 47), (3, 1, 5, 4)])
@pytest.mark.parametrize("stride", [1, 2])
def test_stem(shape, stride):
    c, out = cost.stem_cost(shape, 32, stride)
    m = Stem(32, stride)
    assert counted_macs(m, shape) == c.macs
    assert n_params(m) == c.params
    if shape[2] < 50:
        assert tuple(Stem(32, stride)(torch.zeros(1, *shape)).shape[1:]) == out


@pytest.mark.parametrize("shape", [(24, 16, 56, 56), (7, 5, 9, 13), (16, 2, 1, 1)])
@pytest.mark.parametrize("stride", [1, 2])
def test_head(shape, stride):
    c, out = cost.transition_cost(shape, 20, stride)
    m = Transition(shape[0], 20, stride)
    assert counted_macs(m, shape) == c.macs
    assert n_params(m) == c.params
    assert tuple(Transition(shape[0], 20, stride)(torch.zeros(2, *shape)).shape[1:]) == out


@pytest.mark.parametrize("dilation", [1, 2, 4, 7])
@pytest.mark.parametrize("shape", [(16, 16, 14, 14), (8, 3, 5, 6), (12, 1, 2, 2)])
def test_dilated_block_keeps_shape_and_matches_counter(dilation, shape):
    c = cost.op_cost(f"dil{dilation}", shape)
    m = DilatedBlock(shape[0], dilation)
    assert counted_macs(m, shape) == c.macs
    assert n_params(m) == c.params
    assert DilatedBlock(shape[0], dilation)(torch.zeros(1, *shape)).shape[1:] == shape


def test_skip_is_free():
    assert cost.op_cost("skip", (64, 16, 14, 14)) == cost.Cost(0, 0)


def test_classifier():
    c = cost.classifier_cost(48, 101)
    m = Classifier(48, 101, dropout=0.5)
    assert counted_macs(m, (48, 4, 7, 7)) == c.macs
    assert n_params(m) == c.params


def _random_spec(rng: random.Random) -> ArchSpec:
    stages = []
    for _ in range(rng.randint(1, 5)):
        ops = tuple(rng.choice(["dil1", "dil2", "dil4"]) for _ in range(rng.randint(0, 3)))
        stages.append(StageSpec(rng.randint(2, 24), rng.choice([1, 2]), ops))
    shape = (3, rng.randint(1, 9), rng.randint(8, 40), rng.randint(8, 40))
    return ArchSpec(
        shape, rng.randint(2, 16), rng.choice([1, 2]), tuple(stages), rng.randint(2, 20)
    )


def _networks():
    rng = random.Random(0)
    yield resolve_arch("paper-k400")
    yield resolve_arch("r2plus1d-baseline")
    yield resolve_arch("paper-k400", input_shape=(3, 8, 112, 112), num_classes=101)
    for _ in range(6):
        yield _random_spec(rng)


@pytest.mark.parametrize("spec", list(_networks()), ids=lambda s: s.name or "random")
def test_network_cost_is_exact(spec):
    predicted = cost.network_cost(spec)
    with torch.device("meta"):
        net = build_network(spec)
    assert counted_macs(net, spec.input) == predicted.macs
    assert n_params(net) == predicted.params


def test_paper_k400_figure():
    c = cost.network_cost(resolve_arch("paper-k400"))
    assert c.macs == 17_639_677_952
    assert round(c.macs / 1e9, 1) == 17.6
    assert c.params == sum(
        p.numel() for p in build_network(resolve_arch("paper-k400")).parameters()
    )
