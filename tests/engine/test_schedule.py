"""The learning-rate schedule: linear warm-up, then cosine annealing."""

from __future__ import annotations

import math

import pytest

from vidnas.engine.runtime import cosine_lr


def test_cosine_without_warmup_is_the_papers_schedule():
    assert cosine_lr(0, 101, 0.1, 0.0) == pytest.approx(0.1)
    assert cosine_lr(50, 101, 0.1, 0.0) == pytest.approx(0.05)
    assert cosine_lr(100, 101, 0.1, 0.0) == pytest.approx(0.0)
    assert cosine_lr(500, 101, 0.1, 1e-4) == pytest.approx(1e-4)  # past the end: the floor


def test_warmup_rises_linearly_then_the_cosine_runs_over_what_is_left():
    lrs = [cosine_lr(s, 111, 0.1, 0.0, warmup=10) for s in range(111)]
    assert lrs[:10] == pytest.approx([0.01 * (s + 1) for s in range(10)])
    assert lrs[10] == pytest.approx(0.1)  # the cosine starts at the peak
    assert lrs[10 + 50] == pytest.approx(0.05)
    assert lrs[-1] == pytest.approx(0.0)
    tail = lrs[10:]
    assert all(tail[i] >= tail[i + 1] for i in range(len(tail) - 1))  # never rises again
    assert not any(math.isnan(x) for x in lrs)
