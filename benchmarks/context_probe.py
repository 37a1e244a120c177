"""Probe for an architecture-sensitive task (issue 12): does a network's temporal
context decide its accuracy within a CPU training budget?

The task, rendered in memory (no video files): two streams, the top and the bottom
half of the frame, each tinted with one of four colours for ``--event`` frames every
``--period`` frames, the colours cycling forward (0, 1, 2, 3) or backward (0, 3, 2,
1) with a random phase; class = (direction of the top stream, direction of the
bottom one), four classes. Every window of up to ``period - event + 1`` frames holds
at most one colour of each stream, whose distribution is the same for every class,
and the phase is uniform, so the clip's ends reveal nothing: a network needs
``period - event + 2`` frames of context to see an ordered pair of colours. The
transitions alone span 13 frames; each stack layer adds 2, 4 or 8 (dil1/2/4).

It trains a few fixed specs of a small version of the ``cpu-small`` space (one
stack layer per stage, two in stage 4) from scratch with SGD on the same clips
and prints held-out top-1 (chance 0.25). Usage::

    .venv/bin/python benchmarks/context_probe.py --frames 48 --period 16 --event 4 \\
        --steps 300 --archs heads dil1 dil4
"""

from __future__ import annotations

import argparse
import math
import platform
import time

import numpy as np
import torch
import torch.nn.functional as F

from vidnas.config import load_config
from vidnas.models.cost import network_cost
from vidnas.models.network import build_network
from vidnas.models.space import SearchSpace
from vidnas.models.spec import ArchSpec, StageSpec

LAYERS = (0, 1, 2, 1, 1, 1)  # stack layers per stage of the probe's space
HUES = (0.0, 0.33, 0.6, 0.15)


def _rgb(h: float) -> np.ndarray:
    i, f = int(h * 6) % 6, h * 6 - math.floor(h * 6)
    q, t = 1 - 0.9 * f, 1 - 0.9 * (1 - f)
    rgb = [(1, t, 0.1), (q, 1, 0.1), (0.1, 1, t), (0.1, q, 1), (t, 0.1, 1), (1, 0.1, q)][i]
    return np.array(rgb, dtype=np.float32) * 255


def render(label: int, frames: int, size: int, period: int, event: int, rng) -> np.ndarray:
    video = np.broadcast_to(rng.uniform(40, 140, size=(1, size, size, 3)), (frames, size, size, 3))
    video = video.astype(np.float32).copy()
    for stream, backward in enumerate((label // 2, label % 2)):
        order = (0, 3, 2, 1) if backward else (0, 1, 2, 3)
        phase = int(rng.integers(0, 4 * period))
        rows = slice(stream * size // 2, (stream + 1) * size // 2)
        for t in range(frames):
            if (t + phase) % period < event:
                colour = _rgb(HUES[order[((t + phase) // period) % 4]])
                video[t, rows] = 0.4 * video[t, rows] + 0.6 * colour
    return video


def clips(n: int, frames: int, size: int, period: int, event: int, seed: int):
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 4
    x = np.stack([render(int(y), frames, size, period, event, rng) for y in labels])
    x = (torch.from_numpy(x).permute(0, 4, 1, 2, 3) / 255.0 - 0.45) / 0.225
    return x, torch.from_numpy(labels)


def probe_spec(space: SearchSpace, input_shape, op: str | None) -> ArchSpec:
    stages = tuple(
        StageSpec(st.middle_width, st.stride, (op,) * n if op else ())
        for st, n in zip(space.stages, LAYERS)
    )
    return ArchSpec(tuple(input_shape), space.stem_width, space.stem_stride, stages, 4, name=op)


def train_eval(spec: ArchSpec, data, steps: int, seed: int, lr: float, batch: int) -> float:
    torch.manual_seed(seed)
    xtr, ytr, xte, yte = data
    net = build_network(spec).to(xtr.device)
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9, weight_decay=4e-5)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=steps, pct_start=0.15)
    gen = torch.Generator().manual_seed(seed)
    net.train()
    for _ in range(steps):
        idx = torch.randint(len(xtr), (batch,), generator=gen).to(xtr.device)
        loss = F.cross_entropy(net(xtr[idx]), ytr[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    net.eval()
    with torch.no_grad():
        pred = torch.cat([net(xte[i : i + 64]).argmax(1) for i in range(0, len(xte), 64)])
    return float((pred == yte).float().mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=48)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--period", type=int, default=16)
    ap.add_argument("--event", type=int, default=4)
    ap.add_argument("--videos", type=int, default=400, help="training and test clips each")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--archs", nargs="+", default=["heads", "dil1", "dil4"])
    args = ap.parse_args()
    shape = (3, args.frames, args.size, args.size)
    space = SearchSpace.from_config(load_config("cpu-small").space)
    tr = clips(args.videos, args.frames, args.size, args.period, args.event, 1)
    te = clips(args.videos, args.frames, args.size, args.period, args.event, 2)
    print(f"{platform.processor() or platform.machine()}, torch {torch.__version__}")
    print(
        f"input 3x{args.frames}x{args.size}x{args.size}, period {args.period}, event "
        f"{args.event}: context needed {args.period - args.event + 2} frames; "
        f"{args.steps} steps at batch {args.batch}"
    )
    for name in args.archs:
        spec = probe_spec(space, shape, None if name == "heads" else name)
        started = time.perf_counter()
        acc = train_eval(spec, (*tr, *te), args.steps, args.seed, args.lr, args.batch)
        span = 13 + sum(n * 2 * int(name[3:]) for n in LAYERS) if name != "heads" else 13
        print(
            f"{name:6s} {network_cost(spec).macs / 1e9:.4f} GMACs  temporal span {span:3d}  "
            f"top-1 {acc:.3f}  ({time.perf_counter() - started:.0f} s)"
        )


if __name__ == "__main__":
    main()
