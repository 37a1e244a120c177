"""Which frames make a clip, and the seeded randomness behind every choice.

Every random choice of the pipeline (clip start, scale, crop, flip, batch
order) comes from a ``torch.Generator`` seeded from a tuple such as
``(seed, epoch, sample index)``, never from global RNG state. So a sample is
the same whichever DataLoader worker decodes it and however many workers
there are, and a run resumed in the middle of an epoch sees exactly the
batches it would have seen.

Short videos: indices past the last frame are clamped to it, i.e. the last
frame repeats (rather than looping, which would put a jump cut into the
motion the network is meant to learn).
"""

from __future__ import annotations

import hashlib

import torch


def derive_seed(*parts: int | str) -> int:
    """A 63-bit seed from a tuple of ints and strings, stable across runs and
    platforms (Python's ``hash`` of a string is salted per process)."""
    text = "\x1f".join(f"{type(p).__name__}:{p}" for p in parts)
    digest = hashlib.blake2b(text.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def generator(*parts: int | str) -> torch.Generator:
    """A CPU generator seeded by :func:`derive_seed` of ``parts``."""
    return torch.Generator().manual_seed(derive_seed(*parts))


def randint(gen: torch.Generator, low: int, high: int) -> int:
    """Uniform integer in ``[low, high]`` (inclusive) from ``gen``."""
    if high <= low:
        return low
    return int(torch.randint(low, high + 1, (1,), generator=gen))


def clip_span(frames: int, rate: int) -> int:
    """Frames of video that a clip of ``frames`` samples at stride ``rate`` covers."""
    return (frames - 1) * rate + 1


def clip_indices(start: int, frames: int, rate: int, n: int) -> list[int]:
    """The frame indices of a clip; past the end the last frame repeats."""
    last = max(n - 1, 0)
    return [min(start + k * rate, last) for k in range(frames)]


def train_clip(n: int, frames: int, rate: int, gen: torch.Generator) -> list[int]:
    """A training clip from a random start (temporal jitter) of an ``n``-frame video."""
    start = randint(gen, 0, max(0, n - clip_span(frames, rate)))
    return clip_indices(start, frames, rate, n)


def uniform_clips(n: int, frames: int, rate: int, clips: int) -> list[list[int]]:
    """``clips`` clips spread uniformly over the video, each centred in its own
    equal segment of the possible starts (one clip: the centre clip)."""
    room = max(0, n - clip_span(frames, rate)) + 1
    starts = [int((k + 0.5) * room / clips) for k in range(clips)]
    return [clip_indices(s, frames, rate, n) for s in starts]


def batch_order(
    n: int, batch_size: int, *, shuffle: bool, seed: int, epoch: int, drop_last: bool
) -> list[list[int]]:
    """The batches of one epoch as lists of sample indices: a pure function of
    ``(seed, epoch)``."""
    if batch_size <= 0:
        raise ValueError(f"batch_size must be > 0, got {batch_size}")
    if shuffle:
        order = torch.randperm(n, generator=generator(seed, epoch, "order")).tolist()
    else:
        order = list(range(n))
    stop = n - n % batch_size if drop_last else n
    return [order[i : i + batch_size] for i in range(0, stop, batch_size)]
