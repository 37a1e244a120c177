"""Does architecture decide accuracy on a task? (issue 12, deliverable 1)

Trains uniformly sampled architectures of one cost (within ``--tolerance``), the
heads-only network and the hand-designed baseline of a preset's space, each with
several seeds, and prints held-out top-1 per architecture, the spread between
the best and the worst architecture's mean, and the spread over seeds. Jobs run
in a process pool (``--workers``), so a GPU can take several at once.

Two ways to train:

* ``--pipeline``: the real thing. Each job is ``vidnas train`` + ``vidnas test``
  (30 views) of the preset (``--config``, with ``key=value`` overrides) on its
  dataset, as ``vidnas compare`` retrains its rows::

      python benchmarks/arch_spread.py --pipeline --config demo --random 8 \\
          --seeds 0 1 --workers 2 --threads 1 --json spread.jsonl data.num_workers=0

  (the demo preset: the echo task at lag 8, docs/results.md "The echo task").

* default: a quick probe on clips of flashes in two halves of the frame,
  rendered in memory (``context_probe.py``), SGD with a one-cycle schedule::

      python benchmarks/arch_spread.py --period 10 --event 3 --random 8 --seeds 0 1 \\
          --device cuda --workers 6 --json spread.jsonl
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from context_probe import clips, train_eval
from vidnas.config import load_config
from vidnas.models.archs import baseline_spec, hand_designed_spec, resolve_arch
from vidnas.models.cost import network_cost
from vidnas.models.space import SearchSpace
from vidnas.models.spec import ArchSpec, StageSpec
from vidnas.nas.derive import sample_derivation


def _specs(args: argparse.Namespace) -> list[ArchSpec]:
    cfg = load_config(args.config, args.overrides)
    space = SearchSpace.from_config(cfg.space)
    shape = tuple(cfg.input) if args.pipeline else (3, args.frames, args.size, args.size)
    base = baseline_spec(space, shape, 4).replace(name="baseline")
    heads = ArchSpec(
        shape,
        space.stem_width,
        space.stem_stride,
        tuple(StageSpec(st.middle_width, st.stride, ()) for st in space.stages),
        4,
        name="heads",
    )
    gen = torch.Generator().manual_seed(args.arch_seed)
    costs = [network_cost(sample_derivation(space, shape, 4, gen).spec).macs for _ in range(500)]
    target = args.target * 1e9 if args.target else statistics.median(costs)
    hand = hand_designed_spec(space, shape, 4, target).replace(name="hand")
    out = [heads, base, hand]
    tries = 0
    while len(out) < 3 + args.random and tries < 50_000:
        tries += 1
        d = sample_derivation(space, shape, 4, gen)
        if abs(network_cost(d.spec).macs - target) <= args.tolerance * target:
            out.append(d.spec.replace(name=f"random{len(out) - 2}"))
    for path in args.arch:
        out.append(resolve_arch(path, space, shape, 4))
    if args.only:
        out = [spec for spec in out if spec.name in args.only]
    return out


def _pipeline_job(job: dict) -> dict:
    from vidnas.apps.evaluate import run_test
    from vidnas.config import with_overrides
    from vidnas.loops.train import run_train

    torch.set_num_threads(job["threads"])
    a = job["args"]
    spec = ArchSpec.from_dict(job["spec"])
    cfg = with_overrides(load_config(a["config"], a["overrides"]), f"seed={job['seed']}")
    out = os.path.join(a["out"], f"{spec.name}-seed{job['seed']}")
    started = time.perf_counter()
    res = run_train(spec, cfg, out=out, resume=True, progress=False)
    test = run_test(
        res.best, (cfg.test.clips, cfg.test.crops), out=os.path.join(out, "test"), progress=False
    ).metrics
    return {
        "task": a["config"] + "".join(f" {o}" for o in a["overrides"]),
        "arch": spec.name,
        "gmacs": network_cost(spec).macs / 1e9,
        "seed": job["seed"],
        "top1": test["top1"],
        "seconds": time.perf_counter() - started,
        "ops": [list(st.ops) for st in spec.stages],
    }


def _job(job: dict) -> dict:
    if job["args"]["pipeline"]:
        return _pipeline_job(job)
    torch.set_num_threads(job["threads"])
    dev = torch.device(job["device"])
    spec = ArchSpec.from_dict(job["spec"])
    a = job["args"]
    tr = clips(a["videos"], a["frames"], a["size"], a["period"], a["event"], 1)
    te = clips(a["test_videos"], a["frames"], a["size"], a["period"], a["event"], 2)
    data = tuple(t.to(dev) for t in (*tr, *te))
    started = time.perf_counter()
    top1 = train_eval(spec, data, a["steps"], job["seed"], a["lr"], a["batch"])
    return {
        "task": f"probe p{a['period']}e{a['event']}f{a['frames']}s{a['size']} {a['steps']} steps",
        "arch": spec.name,
        "gmacs": network_cost(spec).macs / 1e9,
        "seed": job["seed"],
        "top1": top1,
        "seconds": time.perf_counter() - started,
        "ops": [list(st.ops) for st in spec.stages],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default="cpu-small", help="preset or YAML of the space")
    ap.add_argument("overrides", nargs="*", help="key=value overrides of the config")
    ap.add_argument("--pipeline", action="store_true", help="retrain and test with vidnas")
    ap.add_argument("--out", default="runs/arch-spread", help="--pipeline: run folders")
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--period", type=int, nargs="+", default=[10])
    ap.add_argument("--event", type=int, default=3)
    ap.add_argument("--videos", type=int, default=800)
    ap.add_argument("--test-videos", type=int, default=800)
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--random", type=int, default=8)
    ap.add_argument("--target", type=float, default=None, help="GMACs (default: median)")
    ap.add_argument("--tolerance", type=float, default=0.1)
    ap.add_argument("--arch-seed", type=int, default=0)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument(
        "--arch", nargs="+", default=[], help="also train these (built-in names or arch.json)"
    )
    ap.add_argument(
        "--only", nargs="+", default=[], help="train only these names (heads, baseline, ...)"
    )
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    specs = _specs(args)
    if args.pipeline:
        from pathlib import Path

        from vidnas.data.synth import ensure_synthetic

        data = load_config(args.config, args.overrides).data
        if data.format == "synthetic":
            ensure_synthetic(Path(data.root), data.synth)  # once, before the pool
    threads = args.threads or max(1, (os.cpu_count() or 1) // args.workers)
    jobs = []
    for period in args.period:
        a = {**vars(args), "period": period}
        for spec in specs:
            for seed in args.seeds:
                jobs.append(
                    dict(
                        spec=spec.to_dict(), seed=seed, args=a, device=args.device, threads=threads
                    )
                )
    if args.pipeline:
        t = load_config(args.config, args.overrides).train
        training = (
            f"vidnas train: {t.epochs} epochs at batch {t.batch_size}, lr {t.lr}, "
            f"dropout {t.dropout}, residual_init {t.residual_init}"
        )
    else:
        training = f"{args.steps} steps at batch {args.batch}"
    print(
        f"# {platform.processor() or platform.machine()}, torch {torch.__version__}, "
        f"{args.device}; {len(specs)} archs x {len(args.seeds)} seeds x {len(args.period)} "
        f"tasks, {training}",
        flush=True,
    )
    rows = []
    sink = open(args.json, "w") if args.json else None  # noqa: SIM115
    with ProcessPoolExecutor(args.workers) as pool:
        for r in pool.map(_job, jobs):
            rows.append(r)
            print(json.dumps({k: v for k, v in r.items() if k != "ops"}), flush=True)
            if sink:
                sink.write(json.dumps(r) + "\n")
                sink.flush()
    for task in dict.fromkeys(r["task"] for r in rows):
        means = {}
        for arch in dict.fromkeys(r["arch"] for r in rows):
            accs = [r["top1"] for r in rows if r["task"] == task and r["arch"] == arch]
            means[arch] = (statistics.mean(accs), statistics.pstdev(accs))
        rand = {k: v for k, v in means.items() if k.startswith("random")}
        print(f"\n## {task}")
        for k, (m, s) in means.items():
            print(f"{k:10s} {m:.3f} +- {s:.3f}")
        if rand:
            ms = [m for m, _ in rand.values()]
            print(
                f"random: best - worst mean {max(ms) - min(ms):.3f}; mean seed spread "
                f"{statistics.mean(s for _, s in rand.values()):.3f}"
            )


if __name__ == "__main__":
    main()
