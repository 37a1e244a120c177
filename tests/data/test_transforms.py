from __future__ import annotations

import pytest
import torch
from datahelpers import ASSETS

from vidnas.config import load_config
from vidnas.data.decode import read_frames
from vidnas.data.sampling import generator
from vidnas.data.transforms import (
    ClipTransform,
    eval_clip,
    multi_crops,
    normalize,
    resize,
    short_side_size,
    train_clip,
)


def _ramp(t: int, h: int, w: int) -> torch.Tensor:
    """uint8 [T, H, W, 3]: red = column (x), green = row (y), blue = frame."""
    x = torch.arange(w).view(1, 1, w).expand(t, h, w)
    y = torch.arange(h).view(1, h, 1).expand(t, h, w)
    f = torch.arange(t).view(t, 1, 1).expand(t, h, w)
    return torch.stack([x, y, f], -1).to(torch.uint8)


def _transform(**over) -> ClipTransform:
    base = dict(
        crop=(32, 32),
        train_resize=(48, 64),
        short_side_jitter=None,
        hflip=True,
        test_short_side=48,
        mean=(0.0, 0.0, 0.0),
        std=(1 / 255, 1 / 255, 1 / 255),  # makes normalize() the identity on 0..255
    )
    base.update(over)
    return ClipTransform(**base)


def test_normalize_layout_and_values():
    frames = torch.full((4, 6, 8, 3), 255, dtype=torch.uint8)
    frames[..., 1] = 0
    out = normalize(frames.permute(0, 3, 1, 2), (0.5, 0.5, 0.5), (0.25, 0.5, 1.0))
    assert out.shape == (3, 4, 6, 8) and out.dtype == torch.float32 and out.is_contiguous()
    assert torch.allclose(out[0], torch.tensor(2.0))  # (1 - 0.5) / 0.25
    assert torch.allclose(out[1], torch.tensor(-1.0))  # (0 - 0.5) / 0.5
    single = torch.full((1, 3, 2, 2), 255.0)  # float, and its [3, 1, H, W] view is contiguous
    normalize(single, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    assert torch.equal(single, torch.full((1, 3, 2, 2), 255.0))  # the input is left alone


def test_train_crop_is_a_window_of_the_resized_frame_and_deterministic():
    t = _transform(train_resize=(64, 64), hflip=False)  # same size: no resampling
    frames = _ramp(4, 64, 64)
    out = train_clip(frames, t, generator(0, 0, 5))
    assert out.shape == (3, 4, 32, 32)
    out = out.round()  # normalize() is the identity up to float rounding here
    left, top = int(out[0, 0, 0, 0]), int(out[1, 0, 0, 0])
    assert torch.equal(out[0, 0, 0], torch.arange(left, left + 32, dtype=torch.float32))
    assert torch.equal(out[1, 0, :, 0], torch.arange(top, top + 32, dtype=torch.float32))
    assert torch.equal(out[2, :, 0, 0], torch.arange(4, dtype=torch.float32))  # frames kept
    assert torch.equal(
        train_clip(frames, t, generator(0, 0, 5)), train_clip(frames, t, generator(0, 0, 5))
    )
    offsets = {
        (round(float(o[0, 0, 0, 0])), round(float(o[1, 0, 0, 0])))
        for o in (train_clip(frames, t, generator(0, 0, i)) for i in range(40))
    }
    assert len(offsets) > 30  # random crops, not one fixed window


def test_flip_happens_about_half_the_time():
    t = _transform(train_resize=(32, 32))
    frames = _ramp(2, 32, 32)
    flipped = sum(
        round(float(train_clip(frames, t, generator(1, 0, i))[0, 0, 0, 0])) == 31
        for i in range(200)
    )
    assert 70 < flipped < 130
    t = _transform(train_resize=(32, 32), hflip=False)
    assert all(
        float(train_clip(frames, t, generator(1, 0, i))[0, 0, 0, 0]) < 0.5 for i in range(50)
    )


def test_fixed_resize_and_short_side_jitter_sizes():
    frames = _ramp(2, 240, 320)
    t = _transform(crop=(224, 224), train_resize=(256, 342))
    assert train_clip(frames, t, generator(0)).shape == (3, 2, 224, 224)
    assert short_side_size(240, 320, 256) == (256, 341)
    assert short_side_size(320, 240, 256) == (341, 256)
    # Jitter: the resized short side lies in the range; seen through the crop's column values.
    t = _transform(crop=(32, 32), short_side_jitter=(32, 64), hflip=False, train_resize=(32, 32))
    ramp = _ramp(1, 100, 100)
    scales = set()
    for i in range(60):
        out = train_clip(ramp, t, generator(2, 0, i))
        step = float(out[0, 0, 0, 20] - out[0, 0, 0, 10]) / 10  # source pixels per output pixel
        scales.add(round(100 / step))
    assert min(scales) >= 30 and max(scales) <= 68 and len(scales) > 5  # 32..64, +-rounding


def test_portrait_video_keeps_its_orientation():
    t = _transform(crop=(32, 32), train_resize=(48, 64), hflip=False)
    frames = _ramp(1, 128, 96)  # portrait
    out = train_clip(frames, t, generator(0))
    col_step = float(out[0, 0, 0, 1] - out[0, 0, 0, 0])
    row_step = float(out[1, 0, 1, 0] - out[1, 0, 0, 0])
    assert col_step == pytest.approx(96 / 48, abs=0.3)  # width 96 -> 48
    assert row_step == pytest.approx(128 / 64, abs=0.3)  # height 128 -> 64


def test_three_crops_left_centre_right_and_top_centre_bottom():
    t = _transform(test_short_side=32)
    land = multi_crops(_ramp(2, 32, 96), t, 3)
    assert land.shape == (3, 3, 2, 32, 32)
    assert [round(float(v[0, 0, 0, 0])) for v in land] == [0, 32, 64]  # left edges (x)
    assert [round(float(v[1, 0, 0, 0])) for v in land] == [0, 0, 0]
    port = multi_crops(_ramp(2, 96, 32), t, 3)
    assert [round(float(v[1, 0, 0, 0])) for v in port] == [0, 32, 64]  # top edges (y)
    centre = multi_crops(_ramp(2, 32, 96), t, 1)
    assert centre.shape == (1, 3, 2, 32, 32) and round(float(centre[0, 0, 0, 0, 0])) == 32
    assert torch.equal(eval_clip(_ramp(2, 32, 96), t), centre[0])


def test_float_path_matches_uint8_path():
    # Off the CPU, resizing runs in float; it must agree with the CPU's uint8 kernel.
    frames = read_frames(ASSETS / "test.avi", range(8)).permute(0, 3, 1, 2)
    a = resize(frames, (100, 133)).float()
    b = resize(frames.float(), (100, 133))
    assert a.shape == b.shape == (8, 3, 100, 133)
    assert (a - b).abs().max() <= 1.0


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu():
    t = ClipTransform.from_config(load_config("paper"))
    frames = read_frames(ASSETS / "test.avi", range(16))
    cpu = multi_crops(frames, t, 3)
    gpu = multi_crops(frames.cuda(), t, 3)
    assert gpu.is_cuda and (gpu.cpu() - cpu).abs().max() < 0.05


def test_real_clips_through_the_paper_transforms():
    cfg = load_config("paper")
    t = ClipTransform.from_config(cfg)
    for name in ("test.avi", "demo.mp4"):
        frames = read_frames(ASSETS / name, range(40, 56))
        clip = train_clip(frames, t, generator(0))
        views = multi_crops(frames, t, 3)
        assert clip.shape == (3, 16, 224, 224) and views.shape == (3, 3, 16, 224, 224)
        assert torch.isfinite(clip).all() and torch.isfinite(views).all()
        # Normalised with mean/std 0.45/0.225: real pixels land in about [-2, 2.5].
        assert float(views.min()) >= -2.01 and float(views.max()) <= 2.45
        assert abs(float(views.mean())) < 1.0
