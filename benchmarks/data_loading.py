"""Clips per second of the data pipeline (decode + transforms), by DataLoader workers.

Two settings:

- paper: 3x16x224x224 training clips (resize to 256x342, random crop, flip) from
  320x240 MPEG-4 Part 2 AVIs of 10 s at 25 fps with B-frames and a key frame every
  12 frames (what UCF101 ships), written here with PyAV;
- cpu-small: 3x16x64x64 training clips from the built-in synthetic dataset
  (96x72, 48 frames), generated here.

Each run iterates one epoch of a fresh loader, so worker start-up is included, as
it is in training. Usage::

    .venv/bin/python benchmarks/data_loading.py [--clips 96] [--workers 0 1 2]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import av
import torch

from vidnas.config import load_config
from vidnas.data import ClipDataset, load_index, make_loader
from vidnas.data.synth import render_video


def write_ucf_like(path: Path, seed: int, seconds: int = 10, fps: int = 25) -> None:
    """A 320x240 MPEG-4 AVI with B-frames and 12-frame groups of pictures."""
    video = render_video("Glide", seconds * fps, 320, seed)
    with av.open(str(path), "w") as c:
        s = c.add_stream("mpeg4", rate=fps)
        s.width, s.height, s.pix_fmt = 320, 240, "yuv420p"
        s.bit_rate = 1_500_000
        s.codec_context.gop_size = 12
        s.codec_context.max_b_frames = 2
        for frame in video:
            for packet in s.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                c.mux(packet)
        for packet in s.encode():
            c.mux(packet)


def measure(cfg, clips: int, workers: int, batch: int = 8) -> float:
    index = load_index(cfg, "train")
    # Repeat the list if it is short: each repeat draws another random clip.
    records = (index.records * -(-clips // len(index)))[:clips]
    ds = ClipDataset(index.subset(records), cfg, "train")
    start = time.perf_counter()
    seen = 0
    loader = make_loader(
        ds, batch, shuffle=True, seed=0, epoch=0, num_workers=workers, drop_last=False
    )
    for b in loader:
        seen += b["clip"].shape[0]
    return seen / (time.perf_counter() - start)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--clips", type=int, default=96, help="clips per measurement")
    p.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    args = p.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t = time.perf_counter()
        videos = root / "ucf" / "train" / "glide"
        videos.mkdir(parents=True)
        for k in range(12):
            write_ucf_like(videos / f"v_{k:02d}.avi", seed=k)
        made_ucf = time.perf_counter() - t
        paper = load_config("paper", [f"data.root={root / 'ucf'}", "data.format=folder"])
        t = time.perf_counter()
        small = load_config("cpu-small", [f"data.root={root / 'synthetic'}"])
        load_index(small, "train")  # generates the synthetic dataset
        made_synth = time.perf_counter() - t

        print(
            f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
            f"Python {platform.python_version()}, torch {torch.__version__}, PyAV {av.__version__}"
        )
        print(f"wrote 12 UCF-like AVIs (320x240, 250 frames) in {made_ucf:.1f} s")
        print(f"generated the cpu-small synthetic dataset (300 videos) in {made_synth:.1f} s\n")
        print("| input | source | workers | clips/s |")
        print("|---|---|---|---|")
        for name, cfg, source in (
            ("3x16x224x224 (paper)", paper, "320x240 MPEG-4 AVI, 10 s"),
            ("3x16x64x64 (cpu-small)", small, "synthetic 96x72, 48 frames"),
        ):
            for w in args.workers:
                rate = measure(cfg, args.clips, w)
                print(f"| {name} | {source} | {w} | {rate:.1f} |", flush=True)


if __name__ == "__main__":
    main()
