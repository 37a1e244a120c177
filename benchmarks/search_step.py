"""Throughput and peak memory of the supernet's two search steps.

    python benchmarks/search_step.py                       # cpu-small and paper inputs
    python benchmarks/search_step.py --preset cpu-small --batch 8 --precision bf16

For each preset, the weight step (forward + backward + SGD on a train batch)
and the architecture step (forward + backward to alpha and beta only + Adam,
with the cost term), and with ``--step train`` a derived network's training
step, are timed on random clips of the preset's input shape,
after warm-up iterations. Each measurement runs in a fresh subprocess so that
its peak memory is its own: on CUDA the peak allocated by torch, on the CPU the
peak resident set of the process (model, optimizer state and activations).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time


def measure(
    preset: str,
    kind: str,
    batch: int,
    iters: int,
    warmup: int,
    precision: str,
    channels_last: bool,
    device: str,
    activation_checkpointing: bool = False,
) -> dict:
    import torch

    from vidnas.config import load_config
    from vidnas.engine.distributed import Dist
    from vidnas.engine.runtime import Runtime
    from vidnas.models.space import search_space
    from vidnas.nas.penalty import CostPenalty
    from vidnas.nas.supernet import Supernet

    cfg = load_config(
        preset,
        [
            f"runtime.precision={precision}",
            f"runtime.channels_last={str(channels_last).lower()}",
            f"runtime.device={device}",
            f"runtime.activation_checkpointing={str(activation_checkpointing).lower()}",
        ],
    )
    rt = Runtime.open(cfg.runtime, Dist())
    dev = rt.device
    penalty = CostPenalty.from_config(cfg.search)
    torch.manual_seed(0)
    if kind == "train":  # the derived network's training step (retraining)
        from vidnas.models.archs import baseline_spec, resolve_arch
        from vidnas.models.network import build_network

        space = search_space(cfg)
        spec = (
            resolve_arch("paper-k400", space)
            if preset == "paper"
            else baseline_spec(space, cfg.input, 400)
        )
        net = rt.module(build_network(spec.replace(input=tuple(cfg.input))))
        w_opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    else:
        supernet = Supernet(
            search_space(cfg),
            cfg.input,
            400,
            activation_checkpointing=cfg.runtime.activation_checkpointing,
        )
        net = rt.module(supernet)
        w_opt = torch.optim.SGD(net.weight_parameters(), lr=0.01, momentum=0.9)
        a_opt = torch.optim.Adam(net.arch_parameters(), lr=3e-4)
        weights = list(net.weight_parameters())
    x = rt.input(torch.randn(batch, *cfg.input))
    y = torch.randint(0, 400, (batch,), device=dev)

    def step() -> None:
        if kind in ("weight", "train"):
            with rt.autocast():
                loss = torch.nn.functional.cross_entropy(net(x).float(), y)
            w_opt.zero_grad(set_to_none=True)
            loss.backward()
            w_opt.step()
        else:
            for p in weights:
                p.requires_grad_(False)
            with rt.autocast():
                logits = net(x)
            loss = torch.nn.functional.cross_entropy(logits.float(), y)
            loss = loss + penalty(net.expected_macs() / 1e9).float()
            a_opt.zero_grad(set_to_none=True)
            loss.backward()
            a_opt.step()
            for p in weights:
                p.requires_grad_(True)

    def sync() -> None:
        if dev.type == "cuda":
            torch.cuda.synchronize()

    for _ in range(warmup):
        step()
    sync()
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for _ in range(iters):
        step()
    sync()
    dt = time.perf_counter() - t0
    if dev.type == "cuda":
        peak = torch.cuda.max_memory_allocated() / 2**30
        mem_kind = "GPU peak allocated"
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB
        mem_kind = "peak RSS"
    return {
        "preset": preset,
        "input": "x".join(map(str, cfg.input)),
        "step": kind,
        "batch": batch,
        "clips_per_s": batch * iters / dt,
        "s_per_step": dt / iters,
        "peak_gib": peak,
        "memory": mem_kind,
        "device": str(dev),
        "precision": precision,
        "channels_last": channels_last,
        "activation_checkpointing": activation_checkpointing,
        "threads": torch.get_num_threads(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--preset", action="append", help="presets (default: cpu-small and paper)")
    ap.add_argument(
        "--batch",
        type=int,
        action="append",
        help="batch per preset, in order (default: cpu-small 8, paper 1)",
    )
    ap.add_argument("--iters", type=int, default=None)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"])
    ap.add_argument("--no-channels-last", action="store_true")
    ap.add_argument("--device", default="auto")
    ap.add_argument(
        "--activation-checkpointing",
        action="store_true",
        help="runtime.activation_checkpointing (the supernet steps)",
    )
    ap.add_argument(
        "--step",
        nargs="+",
        default=["weight", "arch"],
        choices=["weight", "arch", "train"],
        help="weight and arch: the supernet's two steps; train: the derived network's "
        "training step (paper-k400 on the paper preset, the baseline otherwise)",
    )
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.worker:
        spec = json.loads(args.worker)
        print(json.dumps(measure(**spec)))
        return

    presets = args.preset or ["cpu-small", "paper"]
    batches = args.batch or [8 if p != "paper" else 1 for p in presets]
    import torch

    print(
        f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"torch {torch.__version__}, cuda available: {torch.cuda.is_available()}"
    )
    print("| preset | input | step | batch | clips/s | s/step | peak memory (GiB) | device |")
    print("|---|---|---|---|---|---|---|---|")
    for preset, batch in zip(presets, batches):
        iters = args.iters or (3 if preset == "paper" else 10)
        for kind in args.step:
            spec = dict(
                preset=preset,
                kind=kind,
                batch=batch,
                iters=iters,
                warmup=args.warmup,
                precision=args.precision,
                channels_last=not args.no_channels_last,
                device=args.device,
                activation_checkpointing=args.activation_checkpointing,
            )
            out = subprocess.run(
                [sys.executable, __file__, "--worker", json.dumps(spec)],
                capture_output=True,
                text=True,
            )
            if out.returncode != 0:
                print(f"| {preset} | | {kind} | {batch} | failed: {out.stderr.strip()[-200:]} |")
                continue
            r = json.loads(out.stdout.strip().splitlines()[-1])
            print(
                f"| {r['preset']} | {r['input']} | {r['step']} | {r['batch']} | "
                f"{r['clips_per_s']:.2f} | {r['s_per_step']:.3f} | {r['peak_gib']:.2f} "
                f"({r['memory']}) | {r['device']} {r['precision']}"
                f"{' channels_last' if r['channels_last'] else ''}"
                f"{' checkpointed' if r['activation_checkpointing'] else ''} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
