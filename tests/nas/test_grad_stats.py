"""The architecture gradient's per-epoch figures (signal-to-noise and size), which
tell a search that follows a signal from one that random-walks on noise."""

from __future__ import annotations

import torch
from torch import nn

from vidnas.engine.runtime import grad_scaler
from vidnas.nas.architect import GradStats


def _feed(stats: GradStats, grads: torch.Tensor) -> None:
    p = nn.Parameter(torch.zeros(grads.shape[1]))
    scaler = grad_scaler("fp32", torch.device("cpu"))
    for g in grads:
        p.grad = g.clone()
        stats.add([p], scaler)


def test_snr_and_rms_are_the_per_element_statistics():
    grads = torch.tensor([[1.0, 2.0, -1.0], [3.0, 2.0, 1.0], [2.0, 2.0, 3.0]])
    stats = GradStats(3)
    _feed(stats, grads)
    out = stats.summary("alpha", slice(0, 3))
    mean, std = grads.double().mean(0), grads.double().std(0)  # unbiased, as summary's
    snr = (mean.abs() / std.clamp_min(1e-30)).median()
    assert abs(out["alpha_grad_snr"] - float(snr)) < 1e-12
    assert abs(out["alpha_grad_rms"] - float(grads.double().pow(2).mean().sqrt())) < 1e-12


def test_noise_reads_low_and_a_steady_gradient_high():
    gen = torch.Generator().manual_seed(0)
    noise, steady = GradStats(200), GradStats(200)
    _feed(noise, torch.randn(27, 200, generator=gen))  # 27 steps: one demo epoch
    _feed(steady, 1.0 + 0.1 * torch.randn(27, 200, generator=gen))
    # |mean| / std of 27 draws of pure noise: median about 0.674 / sqrt(27) = 0.13.
    assert 0.08 < noise.summary("a", slice(None))["a_grad_snr"] < 0.2
    assert steady.summary("a", slice(None))["a_grad_snr"] > 5


def test_reset_and_state_round_trip():
    stats = GradStats(2)
    _feed(stats, torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    copy = GradStats(2)
    copy.load_state_dict(stats.state_dict())
    assert copy.summary("b", slice(None)) == stats.summary("b", slice(None))
    one = GradStats(2)
    _feed(one, torch.tensor([[3.0, 4.0]]))
    assert one.summary("b", slice(None)) == {"b_grad_snr": None, "b_grad_rms": 12.5**0.5}
    stats.reset()
    assert stats.summary("b", slice(None)) == {"b_grad_snr": None, "b_grad_rms": None}
