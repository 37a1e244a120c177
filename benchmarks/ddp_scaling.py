"""Clips/s of retraining and searching with 1 and N processes under torchrun.

Each measurement is one epoch of ``vidnas train`` (a built-in network) or a
warm-up epoch of ``vidnas search`` with the same *global* batch, launched as
``torchrun --standalone --nproc_per_node N -m vidnas ...``, with the machine's
cores divided between the processes (``runtime.threads``). Throughput is the
epoch's training clips over its wall time as the run records it
(``metrics.jsonl`` time_s: the steps and the end-of-epoch validation), so process
start-up and dataset generation are not counted::

    python benchmarks/ddp_scaling.py --config cpu-small --procs 1 2
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

from vidnas.config import load_config


def measure(kind: str, procs: int, args: argparse.Namespace, out: Path) -> float:
    cfg = load_config(args.config, args.overrides)
    batch = (cfg.train if kind == "train" else cfg.search).batch_size
    if batch % procs:
        raise SystemExit(f"the global batch {batch} does not split over {procs} processes")
    threads = max(1, (os.cpu_count() or 1) // procs)
    sets = [f"runtime.threads={threads}", *args.overrides]
    if kind == "train":
        cmd = ["train", args.arch, "-c", args.config, "-o", str(out), "--no-progress"]
        sets += ["train.epochs=1", f"train.batch_size={batch // procs}"]
    else:
        cmd = ["search", "-c", args.config, "-o", str(out), "--no-progress"]
        sets += ["search.epochs=1", "search.warmup_epochs=1", f"search.batch_size={batch // procs}"]
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    full = [*launcher, "--nproc_per_node", str(procs), "-m", "vidnas", *cmd, *sets]
    subprocess.run(
        full, check=True, capture_output=True, env=dict(os.environ, OMP_NUM_THREADS=str(threads))
    )
    row = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    return row["train_clips"] / row["time_s"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default="cpu-small")
    ap.add_argument("overrides", nargs="*")
    ap.add_argument("--arch", default="r2plus1d-baseline")
    ap.add_argument("--procs", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--kind", nargs="+", choices=("train", "search"), default=["train", "search"])
    args = ap.parse_args()
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs")
    print("| run | processes | threads each | clips/s |")
    print("|---|---|---|---|")
    for kind in args.kind:
        for n in args.procs:
            with tempfile.TemporaryDirectory() as tmp:
                rate = measure(kind, n, args, Path(tmp) / "run")
            threads = max(1, (os.cpu_count() or 1) // n)
            print(f"| {kind} ({args.config}) | {n} | {threads} | {rate:.2f} |", flush=True)


if __name__ == "__main__":
    main()
