"""The relaxation's mathematics, checked exactly on small spaces."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from vidnas.config import SpaceConfig, StageSpace
from vidnas.models.cost import network_cost
from vidnas.models.network import build_network
from vidnas.models.space import SearchSpace
from vidnas.nas.derive import derive, derive_from, viterbi
from vidnas.nas.supernet import CostTable, Supernet, expected_cost, inherit_weights

INPUT = (3, 4, 16, 16)
CLASSES = 5


def small_space(ops=("dil1", "dil2", "skip")) -> SearchSpace:
    return SearchSpace.from_config(
        SpaceConfig(
            stem_width=4,
            stages=[
                StageSpace([4, 6], 0, 2),
                StageSpace([6, 8, 10], 2, 2),
                StageSpace([8, 12], 1, 1),
            ],
            ops=list(ops),
        )
    )


def random_probs(space: SearchSpace, gen: torch.Generator):
    op_probs = [
        torch.randn(
            len(st.widths), st.max_layers, len(space.ops), generator=gen, dtype=torch.float64
        )
        .mul(2)
        .softmax(-1)
        for st in space.stages
    ]
    n_prev = [1] + [len(st.widths) for st in space.stages[:-1]]
    path_probs = [
        torch.randn(n, len(st.widths), generator=gen, dtype=torch.float64).mul(2).softmax(-1)
        for n, st in zip(n_prev, space.stages)
    ]
    return op_probs, path_probs


def one_hot(space: SearchSpace, gen: torch.Generator):
    op_probs, path_probs = random_probs(space, gen)
    return (
        [torch.nn.functional.one_hot(p.argmax(-1), p.shape[-1]).double() for p in op_probs],
        [torch.nn.functional.one_hot(p.argmax(-1), p.shape[-1]).double() for p in path_probs],
    )


def all_paths(space):
    return itertools.product(*(range(len(st.widths)) for st in space.stages))


def test_one_hot_expected_cost_is_the_derived_networks_cost():
    space = small_space()
    sn = Supernet(space, INPUT, CLASSES)
    gen = torch.Generator().manual_seed(0)
    for _ in range(20):
        op_probs, path_probs = one_hot(space, gen)
        d = derive(space, op_probs, path_probs, INPUT, CLASSES)
        exact = network_cost(d.spec).macs
        assert expected_cost(sn.cost_table, op_probs, path_probs).item() == exact


def test_one_hot_on_the_paper_space_at_full_size():
    from vidnas.config import load_config

    space = SearchSpace.from_config(load_config("paper").space)
    table = CostTable.build(space, (3, 16, 224, 224), 400)
    gen = torch.Generator().manual_seed(1)
    for _ in range(5):
        op_probs, path_probs = one_hot(space, gen)
        d = derive(space, op_probs, path_probs, (3, 16, 224, 224), 400)
        assert expected_cost(table, op_probs, path_probs).item() == network_cost(d.spec).macs


def test_expected_cost_equals_brute_force_expectation():
    space = small_space()
    table = Supernet(space, INPUT, CLASSES).cost_table
    gen = torch.Generator().manual_seed(2)
    op_probs, path_probs = random_probs(space, gen)
    layer_slots = [
        (s, layer) for s, st in enumerate(space.stages) for layer in range(st.max_layers)
    ]
    total = 0.0
    for path in all_paths(space):
        p_path, prev = 1.0, 0
        for s, j in enumerate(path):
            p_path *= path_probs[s][prev, j].item()
            prev = j
        for choice in itertools.product(range(len(space.ops)), repeat=len(layer_slots)):
            p_ops = 1.0
            hot_ops = [torch.zeros_like(p) for p in op_probs]
            for (s, layer), o in zip(layer_slots, choice):
                p_ops *= op_probs[s][path[s], layer, o].item()
                hot_ops[s][path[s], layer, o] = 1.0
            hot_paths = [torch.zeros_like(p) for p in path_probs]
            prev = 0
            for s, j in enumerate(path):
                hot_paths[s][prev, j] = 1.0
                prev = j
            d = derive(space, hot_ops, hot_paths, INPUT, CLASSES)
            total += p_path * p_ops * network_cost(d.spec).macs
    got = expected_cost(table, op_probs, path_probs).item()
    assert got == pytest.approx(total, rel=1e-12)


def test_viterbi_is_the_brute_force_best_path():
    space = SearchSpace.from_config(
        SpaceConfig(
            stages=[
                StageSpace([8, 9, 10], 0),
                StageSpace([11, 12, 13, 14], 0),
                StageSpace([15, 16], 0),
                StageSpace([17, 18, 19, 20], 0),
            ]
        )
    )
    gen = torch.Generator().manual_seed(3)
    for _ in range(50):
        _, path_probs = random_probs(space, gen)
        best, best_p = None, -1.0
        for path in all_paths(space):
            p, prev = 1.0, 0
            for s, j in enumerate(path):
                p *= path_probs[s][prev, j].item()
                prev = j
            if p > best_p:
                best, best_p = list(path), p
        path, prob = viterbi(path_probs)
        assert path == best
        assert prob == pytest.approx(best_p, rel=1e-9)


def test_viterbi_differs_from_greedy_when_it_should():
    # Greedy takes 0.6 first, then can only reach 0.5; Viterbi takes 0.4 * 1.0.
    p0 = torch.tensor([[0.6, 0.4]])
    p1 = torch.tensor([[0.5, 0.5], [0.0, 1.0]])
    path, prob = viterbi([p0, p1])
    assert path == [1, 1]
    assert prob == pytest.approx(0.4)


def test_derivation_drops_skips_and_keeps_layer_indices():
    space = small_space()
    # Node 1 of stage 1 (width 8): layer 0 skip, layer 1 dil2.
    op_probs = [torch.zeros(2, 0, 3), torch.zeros(3, 2, 3), torch.zeros(2, 1, 3)]
    op_probs[1][1, 0, 2] = 1
    op_probs[1][1, 1, 1] = 1
    op_probs[2][0, 0, 0] = 1
    path_probs = [torch.tensor([[0.9, 0.1]]), torch.eye(2, 3), torch.tensor([[0.0, 1.0]] * 3)]
    path_probs[1][0] = torch.tensor([0.1, 0.8, 0.1])
    d = derive(space, op_probs, path_probs, INPUT, CLASSES)
    assert d.path == (0, 1, 1)
    assert [st.width for st in d.spec.stages] == [4, 8, 12]
    assert d.spec.stages[1].ops == ("dil2",)
    assert d.layers[1] == (1,)
    assert d.spec.stages[2].ops == ("dil1",)  # a tie (all zeros) goes to the first op


def test_arch_parameters_get_gradients_from_both_loss_terms():
    space = small_space()
    torch.manual_seed(0)
    sn = Supernet(space, INPUT, CLASSES)
    with torch.no_grad():
        for p in sn.arch_parameters():
            p.normal_(0, 0.5)
        # At initialisation every block is the identity (zero-init residual), so the
        # ops are indistinguishable and CE cannot prefer one; give them trained-like scales.
        for m in sn.modules():
            if isinstance(m, torch.nn.BatchNorm3d):
                m.weight.uniform_(0.5, 1.5)
    x = torch.randn(3, *INPUT)
    y = torch.tensor([0, 1, 2])
    ce = torch.nn.functional.cross_entropy(sn(x), y)
    grads_ce = torch.autograd.grad(ce, sn.arch_parameters(), allow_unused=True)
    cost_term = 0.3 * torch.log(sn.expected_macs()) / math.log(10)
    grads_cost = torch.autograd.grad(cost_term, sn.arch_parameters(), allow_unused=True)
    for p, g_ce, g_cost in zip(sn.arch_parameters(), grads_ce, grads_cost):
        if p.numel() == 0:
            continue
        assert g_ce is not None and g_ce.abs().sum() > 0
        assert g_cost is not None and g_cost.abs().sum() > 0
    # The cost term pushes towards cheaper choices: skip's alpha gets a negative gradient
    # of the loss only if it is cheaper, i.e. its gradient is below every conv op's.
    g_alpha = grads_cost[1]
    assert (g_alpha[..., 2] < g_alpha[..., 0]).all()


def test_weights_get_no_gradient_from_the_cost_term():
    sn = Supernet(small_space(), INPUT, CLASSES)
    sn.expected_macs().backward()
    assert all(p.grad is None for p in sn.weight_parameters())


def test_supernet_with_fixed_widths_and_one_hot_ops_is_the_derived_network():
    space = small_space().restrict(["ops", "depth"])
    torch.manual_seed(0)
    sn = Supernet(space, INPUT, CLASSES)
    gen = torch.Generator().manual_seed(4)
    with torch.no_grad():
        for a in sn.alphas:
            a.copy_(torch.randn(a.shape, generator=gen).mul(1e4))
    d = derive_from(sn)
    net = build_network(d.spec)
    inherit_weights(net, sn, d.path, d.layers)
    sn.eval()
    net.eval()
    x = torch.randn(2, *INPUT)
    torch.testing.assert_close(sn(x), net(x), rtol=0, atol=0)


def test_inherit_weights_copies_the_path():
    space = small_space()
    torch.manual_seed(0)
    sn = Supernet(space, INPUT, CLASSES)
    d = derive_from(sn)
    net = build_network(d.spec)
    inherit_weights(net, sn, d.path, d.layers)
    node = sn.stages[1].nodes[d.path[1]]
    assert torch.equal(net.stages[1].transition[0].weight, node.transitions[d.path[0]][0].weight)
    assert torch.equal(net.classifier.fc.weight, sn.classifiers[d.path[-1]].fc.weight)
    other = build_network(
        derive(space, *one_hot(space, torch.Generator().manual_seed(9)), INPUT, CLASSES).spec
    )
    if other.spec != d.spec:
        with pytest.raises(ValueError, match="does not match"):
            inherit_weights(other, sn, d.path, d.layers)


def test_supernet_forward_and_parameter_split():
    space = small_space()
    sn = Supernet(space, INPUT, CLASSES)
    out = sn(torch.randn(2, *INPUT))
    assert out.shape == (2, CLASSES)
    n_arch = sum(p.numel() for p in sn.arch_parameters())
    assert n_arch == (2 * 0 + 3 * 2 + 2 * 1) * 3 + (1 * 2 + 2 * 3 + 3 * 2)
    n_all = sum(p.numel() for p in sn.parameters())
    assert sum(p.numel() for p in sn.weight_parameters()) == n_all - n_arch


def test_sampled_architectures_are_uniform_and_consistent():
    from vidnas.nas.derive import sample_derivation

    space = small_space()
    gen = torch.Generator().manual_seed(0)
    widths, ops = [], []
    for _ in range(3000):
        d = sample_derivation(space, INPUT, CLASSES, gen)
        assert [st.widths[j] for st, j in zip(space.stages, d.path)] == [
            st.width for st in d.spec.stages
        ]
        widths.append(d.spec.stages[1].width)
        ops.append(len(d.spec.stages[1].ops))
    # Stage 2 has 3 widths; 2 layers of 3 ops (one is skip): 0, 1, 2 kept with 1/9, 4/9, 4/9.
    for w in (6, 8, 10):
        assert widths.count(w) / 3000 == pytest.approx(1 / 3, abs=0.03)
    for k, p in ((0, 1 / 9), (1, 4 / 9), (2, 4 / 9)):
        assert ops.count(k) / 3000 == pytest.approx(p, abs=0.03)


def test_sampled_ops_are_distinct_seeded_and_follow_alpha():
    space = small_space()
    sn = Supernet(space, INPUT, CLASSES)
    with torch.no_grad():
        sn.alphas[1].zero_()
        sn.alphas[1][:, :, 1] = 20.0  # dil2 almost surely first
    a = sn.sample_ops(2, torch.Generator().manual_seed(0))
    b = sn.sample_ops(2, torch.Generator().manual_seed(0))
    assert [x.shape for x in a] == [(2, 0, 2), (3, 2, 2), (2, 1, 2)]
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert (a[1][..., 0] == 1).all()  # the dominant op is drawn first
    assert (a[1][..., 0] != a[1][..., 1]).all() and (a[2][..., 0] != a[2][..., 1]).all()


def test_one_sampled_op_per_layer_is_that_ops_network():
    """With one op sampled per layer the forward equals the relaxed forward with alpha
    one-hot on those ops, and alpha gets no gradient from it."""
    space = small_space()
    torch.manual_seed(0)
    sn = Supernet(space, INPUT, CLASSES).eval()
    sample = sn.sample_ops(1, torch.Generator().manual_seed(3))
    x = torch.randn(2, *INPUT)
    out = sn(x, op_sample=sample)
    out.sum().backward()
    assert all(a.grad is None or not a.grad.any() for a in sn.alphas)
    with torch.no_grad():
        for a, idx in zip(sn.alphas, sample):
            a.fill_(-1e4)
            a.scatter_(-1, idx, 0.0)
        assert torch.allclose(sn(x), out, atol=1e-6)
    with torch.no_grad():
        for a in sn.alphas:
            a.zero_()
        for m in sn.modules():  # zero-initialised residuals make every op the identity
            if isinstance(m, torch.nn.BatchNorm3d):
                m.weight.fill_(1.0)
    two = sn.sample_ops(2, torch.Generator().manual_seed(3))
    sn.zero_grad()
    sn(x, op_sample=two).sum().backward()
    assert any(a.grad is not None and a.grad.any() for a in sn.alphas)


@pytest.mark.parametrize("scale", [0.0, 1.0])
def test_zero_initialised_residuals_give_alpha_no_gradient(scale):
    """Every residual block starting as the identity is also every op equal to skip:
    the cross-entropy cannot prefer one op, so alpha's gradient is exactly zero until
    the blocks grow (search.residual_init moves that start)."""
    torch.manual_seed(0)
    sn = Supernet(small_space(), INPUT, CLASSES, residual_scale=scale)
    y = torch.tensor([0, 1])
    torch.nn.functional.cross_entropy(sn(torch.randn(2, *INPUT)), y).backward()
    moved = any(a.grad is not None and a.grad.abs().max() > 1e-9 for a in sn.alphas)
    assert moved == (scale > 0)


@pytest.mark.parametrize("sampled", [False, True])
def test_activation_checkpointing_changes_nothing_but_memory(sampled):
    """Same loss, same gradients for weights and alpha/beta, same BatchNorm running
    statistics (the recomputation must not fold the batch in twice), in both modes
    and with frozen weights as in the architecture step."""
    import copy

    torch.manual_seed(0)
    plain = Supernet(small_space(), INPUT, CLASSES, residual_scale=1.0)
    ckpt = copy.deepcopy(plain)
    ckpt.activation_checkpointing = True
    x, y = torch.randn(2, *INPUT), torch.tensor([0, 1])
    sample = plain.sample_ops(2, torch.Generator().manual_seed(1)) if sampled else None
    for net in (plain, ckpt):
        torch.nn.functional.cross_entropy(net(x, op_sample=sample), y).backward()
    for (name, a), b in zip(plain.named_parameters(), ckpt.parameters()):
        assert (a.grad is None) == (b.grad is None), name
        if a.grad is not None:
            assert torch.allclose(a.grad, b.grad, atol=1e-6, rtol=1e-5), name
    for (name, a), b in zip(plain.named_buffers(), ckpt.buffers()):
        assert torch.equal(a, b), name
    # The architecture step: weights frozen, gradients reach alpha and beta only.
    for net in (plain, ckpt):
        net.zero_grad()
        for p in net.weight_parameters():
            p.requires_grad_(False)
        torch.nn.functional.cross_entropy(net(x, op_sample=sample), y).backward()
    for a, b in zip(plain.arch_parameters(), ckpt.arch_parameters()):
        if a.numel():  # a stage without stack layers has an empty alpha
            assert a.grad is not None and torch.allclose(a.grad, b.grad, atol=1e-7, rtol=1e-5)
