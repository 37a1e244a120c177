"""What every synthetic task draws with: the frame size, colours, and the video
encoding (MPEG-4 Part 2 in AVI, as UCF101 ships)."""

from __future__ import annotations

import math
from pathlib import Path

import av
import numpy as np

# Five saturated hues (red, yellow, green, blue, magenta) for whole-frame tints,
# on one plain grey: a background of its own would let each video be recognised
# by it, and a supernet memorises the training videos instead of learning the task.
HUES = (0.0, 0.15, 0.35, 0.6, 0.83)
GREY = 90.0


def frame_size(size: int) -> tuple[int, int]:
    """(H, W) of the videos: ``size`` wide, 4:3 like UCF101's 320x240, both even."""
    w = size - size % 2
    h = round(w * 3 / 4)
    return h - h % 2, w


def hsv(h: float, s: float, v: float) -> np.ndarray:
    """An RGB colour (float32, 0-255) from hue, saturation and value in [0, 1]."""
    i = int(h * 6) % 6
    f = h * 6 - math.floor(h * 6)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    rgb = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i]
    return np.array(rgb, dtype=np.float32) * 255


def to_uint8(video: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(video), 0, 255).astype(np.uint8)


def encode_avi(path: Path, video: np.ndarray, fps: int) -> None:
    """MPEG-4 Part 2 in AVI (UCF101's codec) at fixed quantiser 2: near lossless,
    decodable by anything, and byte-deterministic on one thread.

    Every frame is a key frame. With motion-compensated frames, how well an
    object is coded depends on how it moved (a paused object sharpens over
    successive P-frames), which would let a single frame hint at its class.
    """
    with av.open(str(path), "w", format="avi") as c:
        s = c.add_stream("mpeg4", rate=fps)
        s.width, s.height = video.shape[2], video.shape[1]
        s.pix_fmt = "yuv420p"
        s.thread_count = 1
        s.codec_context.gop_size = 1  # intra only: see the docstring
        s.codec_context.qscale = True  # constant quantiser: frames get qmin (2)
        s.codec_context.global_quality = 2 * 118  # FF_QP2LAMBDA * 2
        for frame in video:
            for packet in s.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                c.mux(packet)
        for packet in s.encode():
            c.mux(packet)
