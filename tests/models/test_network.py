from __future__ import annotations

import torch

from tests.conftest import run_cli
from vidnas.models.archs import resolve_arch
from vidnas.models.network import build_network


def test_forward_shapes_and_gradients(tiny_space):
    spec = resolve_arch("r2plus1d-baseline", tiny_space, (3, 8, 32, 32), 5)
    net = build_network(spec, dropout=0.5)
    x = torch.randn(2, 3, 8, 32, 32)
    out = net(x)
    assert out.shape == (2, 5)
    out.sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    assert net.features(x).shape == (2, spec.stages[-1].width, 8, 1, 1)


def test_residual_blocks_start_as_the_identity(tiny_space):
    # Zero-init of each block's last BN scale (init_weights): a block passes its
    # (non-negative, post-ReLU) input through unchanged until training moves that scale.
    spec = resolve_arch("r2plus1d-baseline", tiny_space, (3, 8, 32, 32), 5)
    net = build_network(spec)
    blocks = [b for st in net.stages for b in st.blocks]
    assert blocks
    x = torch.rand(2, blocks[0].conv_s.in_channels, 8, 8, 8)
    torch.testing.assert_close(blocks[0](x), x)
    for b in blocks:
        assert b.bn_t.weight.abs().sum() == 0 and b.bn_s.weight.eq(1).all()
    net(torch.randn(2, 3, 8, 32, 32)).logsumexp(1).sum().backward()
    assert any(b.bn_t.weight.grad.abs().sum() > 0 for b in blocks)
    # ...and so its convs get no gradient at first: the reason for train.residual_init.
    assert all(b.conv_t.weight.grad.abs().sum() == 0 for b in blocks)


def test_residual_init_starts_blocks_live(tiny_space):
    spec = resolve_arch("r2plus1d-baseline", tiny_space, (3, 8, 32, 32), 5)
    net = build_network(spec, residual_init=1.0)
    blocks = [b for st in net.stages for b in st.blocks]
    assert all(b.bn_t.weight.eq(1).all() for b in blocks)
    net(torch.randn(2, 3, 8, 32, 32)).logsumexp(1).sum().backward()
    assert all(b.conv_t.weight.grad.abs().sum() > 0 for b in blocks)


def test_layout_mirrors_the_spec():
    spec = resolve_arch("paper-k400")
    net = build_network(spec)
    assert len(net.stages) == 6
    assert [len(s.blocks) for s in net.stages] == [0, 0, 6, 2, 3, 1]
    assert [b.dilation for b in net.stages[2].blocks] == [4, 4, 4, 1, 1, 4]
    assert net.classifier.fc.out_features == 400


def test_channels_last_gives_the_same_output(tiny_space):
    spec = resolve_arch("r2plus1d-baseline", tiny_space, (3, 8, 32, 32), 3)
    torch.manual_seed(0)
    net = build_network(spec).eval()
    x = torch.randn(1, 3, 8, 32, 32)
    ref = net(x)
    net_cl = net.to(memory_format=torch.channels_last_3d)
    out = net_cl(x.contiguous(memory_format=torch.channels_last_3d))
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)


def test_flops_cli():
    out = run_cli("flops", "paper-k400")
    assert out.returncode == 0, out.stderr
    assert "17.64 GMACs per 3x16x224x224 clip" in out.stdout
    assert "13.15 M parameters" in out.stdout
    small = run_cli("flops", "paper-k400", "--input", "3x8x112x112", "--classes", "101").stdout
    assert "input 3x8x112x112, 101 classes" in small
    bad = run_cli("flops", "nope.json")
    assert bad.returncode == 2 and "neither a built-in architecture" in bad.stderr
