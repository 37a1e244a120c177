"""Helpers of the data tests: small real videos and broken files, written for real."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

ASSETS = Path(__file__).resolve().parent.parent / "assets"


def frame_pattern(k: int, h: int, w: int) -> np.ndarray:
    """Frame ``k``: a grey level and a bar position that identify it."""
    a = np.full((h, w, 3), (40 + 7 * k) % 256, dtype=np.uint8)
    x = (k * 3) % max(1, w - 8)
    a[h // 4 : h // 2, x : x + 8] = (255, 40, 40)
    return a


def write_video(
    path: Path,
    n: int,
    *,
    codec: str = "mpeg4",
    fmt: str | None = None,
    size: tuple[int, int] = (48, 64),
    fps: int = 25,
    bframes: int = 0,
    gop: int = 12,
) -> Path:
    """An ``n``-frame video of :func:`frame_pattern` frames, encoded with PyAV."""
    h, w = size
    with av.open(str(path), "w", format=fmt) as c:
        s = c.add_stream(codec, rate=fps)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        s.thread_count = 1
        s.codec_context.gop_size = gop
        if bframes:
            s.codec_context.max_b_frames = bframes
        for k in range(n):
            frame = av.VideoFrame.from_ndarray(frame_pattern(k, h, w), format="rgb24")
            for packet in s.encode(frame):
                c.mux(packet)
        for packet in s.encode():
            c.mux(packet)
    return path


def sequential_frames(path: Path) -> np.ndarray:
    """Every frame in the order a plain PyAV decode outputs them (the reference)."""
    with av.open(str(path)) as c:
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])


def make_broken_files(folder: Path, good: Path) -> dict[str, Path]:
    """Broken 'videos' of every kind the pipeline must survive, made for real."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        "empty": folder / "empty.avi",
        "truncated": folder / "truncated.avi",
        "text": folder / "notes.mp4",
        "directory": folder / "folder.avi",
        "dangling": folder / "dangling.mp4",
    }
    files["empty"].write_bytes(b"")
    data = good.read_bytes()
    files["truncated"].write_bytes(data[: len(data) // 3])
    files["text"].write_text("this is a text file with a video extension\n")
    files["directory"].mkdir()
    files["dangling"].symlink_to(folder / "does-not-exist.mp4")
    return files
