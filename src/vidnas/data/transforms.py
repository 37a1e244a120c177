"""Spatial transforms of a clip in plain torch, on CPU and CUDA tensors alike.

A decoded clip is uint8 ``[T, H, W, 3]``; every transform works on the view
``[T, 3, H, W]`` of it (a batch of T images in channels-last memory, which is
what torch's fastest resize kernels want) and the last step returns float32
``[3, T, H, W]``, normalised. On the CPU, resizing stays in uint8 (torch has
an antialiased uint8 bilinear kernel, about 10x faster than float); on other
devices it runs in float, so the two differ by uint8 rounding only.

Training (paper appendix A.1): resize every frame to ``data.train_resize``
(H x W, 256 x 342 in the paper; swapped for a portrait video when the crop
still fits) or, with ``data.short_side_jitter``, scale the short side to a
random length in the range; then a random crop of the input size and a
random horizontal flip. Testing: short side to ``data.test_short_side``, then
one centre crop or three crops along the long side (left/centre/right, or
top/centre/bottom for portrait video). A frame too small for the crop after
resizing is scaled up until the crop fits.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from vidnas.config import Config
from vidnas.data.sampling import randint


@dataclass(frozen=True)
class ClipTransform:
    """The transform settings of a config, resolved once."""

    crop: tuple[int, int]
    train_resize: tuple[int, int]
    short_side_jitter: tuple[int, int] | None
    hflip: bool
    test_short_side: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    @classmethod
    def from_config(cls, cfg: Config) -> ClipTransform:
        d = cfg.data
        return cls(
            crop=(cfg.input[2], cfg.input[3]),
            train_resize=tuple(d.train_resize),
            short_side_jitter=tuple(d.short_side_jitter) if d.short_side_jitter else None,
            hflip=d.hflip,
            test_short_side=d.test_short_side,
            mean=tuple(d.mean),
            std=tuple(d.std),
        )


def as_images(frames: torch.Tensor) -> torch.Tensor:
    """uint8 ``[T, H, W, 3]`` -> ``[T, 3, H, W]`` view (no copy)."""
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"expected frames [T, H, W, 3], got {tuple(frames.shape)}")
    return frames.permute(0, 3, 1, 2)


def resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear, antialiased resize of ``[T, 3, H, W]`` to ``size`` (H, W)."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    if x.dtype == torch.uint8 and x.device.type != "cpu":
        x = x.float()
    if x.dtype == torch.uint8:
        x = x.contiguous(memory_format=torch.channels_last)
    return F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)


def short_side_size(h: int, w: int, short: int) -> tuple[int, int]:
    """(H, W) with the shorter side ``short`` and the aspect ratio kept."""
    if h <= w:
        return short, max(short, round(w * short / h))
    return max(short, round(h * short / w)), short


def _cover(size: tuple[int, int], crop: tuple[int, int]) -> tuple[int, int]:
    """``size`` scaled up (aspect kept) until a ``crop`` fits inside it."""
    h, w = size
    scale = max(crop[0] / h, crop[1] / w, 1.0)
    if scale == 1.0:
        return size
    return max(crop[0], round(h * scale)), max(crop[1], round(w * scale))


def crop(x: torch.Tensor, top: int, left: int, size: tuple[int, int]) -> torch.Tensor:
    return x[..., top : top + size[0], left : left + size[1]]


def normalize(x: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """``[T, 3, H, W]`` in 0..255 -> float32 ``[3, T, H, W]``, ``(x / 255 - mean) / std``.

    Reorders while still uint8 (a quarter of the bytes) and scales in place: five
    times faster than the textbook expression, the largest cost of a clip after
    decoding."""
    scale = torch.tensor([1 / (255 * v) for v in std], dtype=torch.float32, device=x.device)
    shift = torch.tensor([m / v for m, v in zip(mean, std)], dtype=torch.float32, device=x.device)
    y = x.permute(1, 0, 2, 3).contiguous().to(torch.float32)
    if y.data_ptr() == x.data_ptr():  # float input already in order: never scale it in place
        y = y.clone()
    return y.mul_(scale.view(3, 1, 1, 1)).sub_(shift.view(3, 1, 1, 1))


def train_clip(frames: torch.Tensor, t: ClipTransform, gen: torch.Generator) -> torch.Tensor:
    """Random scale (fixed resize or short-side jitter), random crop, random flip.

    Draws from ``gen`` in a fixed order (scale, top, left, flip) so a sample is a
    pure function of its generator's seed.
    """
    x = as_images(frames)
    h, w = x.shape[-2:]
    if t.short_side_jitter is not None:
        size = short_side_size(h, w, randint(gen, *t.short_side_jitter))
    else:
        size = t.train_resize
        swapped = (size[1], size[0])
        if (h > w) != (size[0] > size[1]) and swapped[0] >= t.crop[0] and swapped[1] >= t.crop[1]:
            size = swapped  # a portrait video keeps its orientation
    size = _cover(size, t.crop)
    x = resize(x, size)
    top = randint(gen, 0, size[0] - t.crop[0])
    left = randint(gen, 0, size[1] - t.crop[1])
    x = crop(x, top, left, t.crop)
    if t.hflip and randint(gen, 0, 1):
        x = x.flip(-1)
    return normalize(x, t.mean, t.std)


def multi_crops(frames: torch.Tensor, t: ClipTransform, crops: int) -> torch.Tensor:
    """Short side to ``test_short_side``, then ``crops`` (1 or 3) crops:
    float32 ``[crops, 3, T, H, W]``."""
    if crops not in (1, 3):
        raise ValueError(f"crops must be 1 or 3, got {crops}")
    x = as_images(frames)
    h, w = x.shape[-2:]
    size = _cover(short_side_size(h, w, t.test_short_side), t.crop)
    x = resize(x, size)
    ch, cw = t.crop
    mid_top, mid_left = (size[0] - ch) // 2, (size[1] - cw) // 2
    if crops == 1:
        boxes = [(mid_top, mid_left)]
    elif size[1] >= size[0]:  # landscape: left, centre, right
        boxes = [(mid_top, 0), (mid_top, mid_left), (mid_top, size[1] - cw)]
    else:  # portrait: top, centre, bottom
        boxes = [(0, mid_left), (mid_top, mid_left), (size[0] - ch, mid_left)]
    return torch.stack(
        [normalize(crop(x, top, left, t.crop), t.mean, t.std) for top, left in boxes]
    )


def eval_clip(frames: torch.Tensor, t: ClipTransform) -> torch.Tensor:
    """The single view used for per-epoch validation: short side to
    ``test_short_side``, centre crop, no flip. float32 ``[3, T, H, W]``."""
    return multi_crops(frames, t, 1)[0]
