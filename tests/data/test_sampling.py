from __future__ import annotations

import itertools

import pytest
import torch

from vidnas.data.sampling import (
    batch_order,
    clip_indices,
    derive_seed,
    generator,
    train_clip,
    uniform_clips,
)


def test_seeds_are_stable_and_distinct():
    # A fixed value: the seed of a sample must not change between runs, processes
    # (whatever PYTHONHASHSEED says) or machines.
    assert derive_seed(0, 1, 2) == 6144801338459264829
    assert (
        derive_seed("op-sample", 0, "weight-step", 1, 2)
        == derive_seed("op-sample", 0, "weight-step", 1, 2)
        != derive_seed("op-sample", 0, "architecture-step", 1, 2)
    )
    seeds = {derive_seed(0, e, i) for e in range(5) for i in range(50)}
    assert len(seeds) == 250
    assert derive_seed(1, "a") != derive_seed("1", "a")  # types are part of the key
    g1, g2 = generator(3, 4), generator(3, 4)
    assert torch.equal(torch.rand(5, generator=g1), torch.rand(5, generator=g2))


def test_train_clip_jitters_within_the_video():
    starts = set()
    for i in range(200):
        idx = train_clip(48, 16, 1, generator(0, 0, i))
        assert idx == list(range(idx[0], idx[0] + 16))
        starts.add(idx[0])
    assert starts == set(range(0, 33))  # every start of a 48-frame video occurs
    idx = train_clip(100, 8, 4, generator(0, 0, 0))
    assert [b - a for a, b in itertools.pairwise(idx)] == [4] * 7 and idx[-1] <= 99


def test_short_video_repeats_last_frame():
    assert clip_indices(0, 8, 1, 5) == [0, 1, 2, 3, 4, 4, 4, 4]
    assert train_clip(5, 8, 2, generator(0)) == [0, 2, 4, 4, 4, 4, 4, 4]
    assert uniform_clips(1, 4, 1, 2) == [[0, 0, 0, 0], [0, 0, 0, 0]]


def test_uniform_clips_spread_over_the_video():
    clips = uniform_clips(48, 16, 1, 10)
    starts = [c[0] for c in clips]
    assert starts == [1, 4, 8, 11, 14, 18, 21, 24, 28, 31]
    assert uniform_clips(48, 16, 1, 1) == [list(range(16, 32))]  # the centre clip
    assert uniform_clips(300, 16, 2, 3)[2][-1] < 300


def test_batch_order_is_a_function_of_seed_and_epoch():
    a = batch_order(50, 8, shuffle=True, seed=1, epoch=3, drop_last=False)
    assert a == batch_order(50, 8, shuffle=True, seed=1, epoch=3, drop_last=False)
    assert a != batch_order(50, 8, shuffle=True, seed=1, epoch=4, drop_last=False)
    assert a != batch_order(50, 8, shuffle=True, seed=2, epoch=3, drop_last=False)
    assert sorted(i for b in a for i in b) == list(range(50))
    assert [len(b) for b in a] == [8] * 6 + [2]
    dropped = batch_order(50, 8, shuffle=True, seed=1, epoch=3, drop_last=True)
    assert dropped == a[:6]
    assert batch_order(5, 2, shuffle=False, seed=0, epoch=0, drop_last=False) == [
        [0, 1],
        [2, 3],
        [4],
    ]
    with pytest.raises(ValueError):
        batch_order(5, 0, shuffle=False, seed=0, epoch=0, drop_last=False)
