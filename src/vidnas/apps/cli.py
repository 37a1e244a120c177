"""The ``vidnas`` command: a thin layer over the Python API.

Each subcommand parses its arguments, calls one API function and prints the
result; nothing here is needed to use vidnas from Python. Errors a user can
fix (every :class:`vidnas.errors.VidnasError`) print one clear line and exit 2.

Each subcommand imports what it runs inside its ``run`` function: torch and
its friends take seconds to import, and ``vidnas --help`` should not wait for
them. Those are the only imports inside functions here, each marked "lazy".
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence

from vidnas import __version__
from vidnas.apps.data_cli import add_data_command
from vidnas.config import load_config, parse_shape
from vidnas.engine import distributed
from vidnas.errors import ConfigError, VidnasError

_COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = []


def command(fn: Callable[[argparse._SubParsersAction], None]) -> Callable:
    _COMMANDS.append(fn)
    return fn


def _add_config_args(p: argparse.ArgumentParser, default: str | None = None) -> None:
    p.add_argument(
        "--config",
        "-c",
        default=default,
        metavar="PRESET_OR_YAML",
        help="preset (paper, cpu-small, demo, tiny) or YAML file"
        + (f" (default: {default})" if default else " (default: paper)"),
    )
    p.add_argument(
        "overrides", nargs="*", metavar="key=value", help="dotted overrides, e.g. search.epochs=5"
    )


def _parse_shape(text: str) -> tuple[int, int, int, int]:
    try:
        return parse_shape(text, "--input")
    except ConfigError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


# --------------------------------------------------------------------------- space / flops


@command
def _space(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("space", help="print the search space and its size")
    _add_config_args(p)

    def run(args: argparse.Namespace) -> int:
        from vidnas.models.space import SearchSpace  # lazy

        cfg = load_config(args.config, args.overrides)
        print(SearchSpace.from_config(cfg.space).table())
        return 0

    p.set_defaults(func=run)


@command
def _flops(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("flops", help="per-stage MACs and parameters of an architecture")
    p.add_argument("arch", metavar="ARCH", help="built-in name or path to an arch.json")
    p.add_argument(
        "--input",
        type=_parse_shape,
        default=None,
        metavar="CxTxHxW",
        help="input clip shape (default: the spec's own)",
    )
    p.add_argument("--classes", type=int, default=None, help="number of classes")
    _add_config_args(p)

    def run(args: argparse.Namespace) -> int:
        from vidnas.models.archs import resolve_arch  # lazy
        from vidnas.models.cost import network_cost  # lazy
        from vidnas.models.space import SearchSpace  # lazy

        cfg = load_config(args.config, args.overrides)
        spec = resolve_arch(args.arch, SearchSpace.from_config(cfg.space), args.input, args.classes)
        cost = network_cost(spec)
        c, t, h, w = spec.input
        print(f"{spec.name or args.arch}: input {c}x{t}x{h}x{w}, {spec.num_classes} classes")
        print(cost.table())
        print(
            f"\n{cost.macs / 1e9:.2f} GMACs per {c}x{t}x{h}x{w} clip (multiply-accumulates of "
            f"conv and linear layers), {cost.params / 1e6:.2f} M parameters"
        )
        return 0

    p.set_defaults(func=run)


# --------------------------------------------------------------------------- search


def _add_run_args(p: argparse.ArgumentParser, kind: str) -> None:
    p.add_argument(
        "--out",
        "-o",
        default=None,
        metavar="RUN_DIR",
        help=f"run directory (default: runs/{kind}-TIMESTAMP)",
    )
    p.add_argument(
        "--resume",
        default=None,
        metavar="RUN_DIR",
        help="continue the run in RUN_DIR from its last checkpoint",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def _check_resume(args: argparse.Namespace) -> None:
    if args.resume and (args.config or args.overrides or args.out):
        raise ConfigError(
            "--resume continues a run with the config saved in its directory; "
            "it takes no --config, --out or overrides"
        )


@command
def _search(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("search", help="search an architecture; writes RUN_DIR/arch.json")
    _add_config_args(p)
    _add_run_args(p, "search")

    def run(args: argparse.Namespace) -> int:
        from vidnas.loops.search import run_search  # lazy
        from vidnas.report.verdict import terminal_lines  # lazy

        _check_resume(args)
        cfg = None if args.resume else load_config(args.config, args.overrides)
        res = run_search(cfg, out=args.out, resume=args.resume, progress=not args.no_progress)
        s = res.summary
        print(f"\nrun directory: {res.run_dir}")
        print(
            f"architecture:  {res.run_dir / 'arch.json'}  ({s['gmacs']:.4f} GMACs, "
            f"{s['params'] / 1e6:.3f} M parameters)"
        )
        print(
            f"derived network with inherited weights: top-1 {s['derived_inference_acc']:.3f} "
            f"on the inference split (chance {s['chance']:.3f})"
        )
        print("\n".join(terminal_lines(res.verdict)))
        print(f"report:        {res.run_dir / 'report.md'}")
        return 0

    p.set_defaults(func=run)


# --------------------------------------------------------------------------- train / test


@command
def _train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="retrain an architecture (built-in name or arch.json)")
    p.add_argument("arch", nargs="?", metavar="ARCH", help="built-in name or path to arch.json")
    p.add_argument(
        "--init-from",
        metavar="SEARCH_RUN",
        default=None,
        help="start from the supernet weights of the path SEARCH_RUN derives",
    )
    _add_config_args(p)
    _add_run_args(p, "train")

    def run(args: argparse.Namespace) -> int:
        from vidnas.loops.train import run_train  # lazy

        _check_resume(args)
        if args.resume and (args.arch or args.init_from):
            raise ConfigError("--resume takes no ARCH or --init-from: the run directory has them")
        if not args.resume and not args.arch:
            raise ConfigError("train needs ARCH (a built-in name or an arch.json) or --resume")
        cfg = None if args.resume else load_config(args.config, args.overrides)
        res = run_train(
            args.arch,
            cfg,
            out=args.out,
            resume=args.resume,
            init_from=args.init_from,
            progress=not args.no_progress,
        )
        s = res.summary
        print(f"\nrun directory:   {res.run_dir}")
        print(
            f"best checkpoint: {res.best}  (val top-1 {s['best_val_acc']:.3f} at epoch "
            f"{s['best_epoch']}, {s['val_source']})"
        )
        print(f"last checkpoint: {res.last}")
        return 0

    p.set_defaults(func=run)


def _ckpt_split(text: str) -> tuple[str, int | None]:
    path, sep, split = text.rpartition(":")
    if sep and split.isdigit():
        return path, int(split)
    return text, None


@command
def _test(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "test", help="multi-view test of trained checkpoints (top-1/top-5, GMACs x views)"
    )
    p.add_argument(
        "ckpts",
        nargs="+",
        metavar="CKPT[:SPLIT]",
        help="checkpoint(s); ':N' tests on UCF101 split N (several: their mean)",
    )
    p.add_argument("--views", default=None, help="CLIPSxCROPS (default: the config's, 10x3)")
    p.add_argument("--data", default=None, metavar="ROOT", help="test data root (data.root)")
    p.add_argument("--out", default=None, help="output folder (one checkpoint only)")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="key=value",
        help="override the checkpoint's config, e.g. --set data.format=ucf101",
    )
    p.add_argument("--no-progress", action="store_true")

    def run(args: argparse.Namespace) -> int:
        # lazy
        from vidnas.apps.evaluate import format_metrics, mean_over_splits, parse_views, run_test

        views = parse_views(args.views) if args.views else None
        if args.out and len(args.ckpts) > 1:
            raise ConfigError("--out takes one checkpoint; several write next to each")
        results = []
        for item in args.ckpts:
            path, split = _ckpt_split(item)
            overrides = list(args.overrides)
            if args.data:
                overrides.append(f"data.root={args.data}")
            if split is not None:
                overrides.append(f"data.ucf_split={split}")
            res = run_test(path, views, overrides, args.out, progress=not args.no_progress)
            print(format_metrics(res.metrics))
            print(f"written to       {res.out_dir}\n")
            results.append(res)
        if len(results) > 1:
            m = mean_over_splits(results)
            print(
                f"mean over {m['pairs']} checkpoint/split pairs: top-1 {100 * m['top1']:.2f}, "
                f"top-5 {100 * m['top5']:.2f}, mean class acc {100 * m['mean_class_acc']:.2f}"
            )
        return 0

    p.set_defaults(func=run)


@command
def _predict(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="top-5 classes of video files")
    p.add_argument("ckpt", metavar="CKPT")
    p.add_argument("videos", nargs="+", metavar="VIDEO")
    p.add_argument("--views", default=None, help="CLIPSxCROPS (default: the test views)")
    p.add_argument("--top", type=int, default=5)

    def run(args: argparse.Namespace) -> int:
        from vidnas.apps.evaluate import parse_views  # lazy
        from vidnas.apps.predict import predict  # lazy

        views = parse_views(args.views) if args.views else None
        failed = 0
        for pred in predict(args.ckpt, args.videos, views, args.top):
            print(pred.path)
            if pred.error:
                failed += 1
                print(f"  cannot read: {pred.error}", file=sys.stderr)
                continue
            for name, prob in pred.top:
                print(f"  {prob:7.2%}  {name}")
        return 1 if failed else 0

    p.set_defaults(func=run)


@command
def _export(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="write a trained network as ONNX or TorchScript")
    p.add_argument("ckpt", metavar="CKPT")
    p.add_argument("--format", required=True, choices=["onnx", "pt2", "torchscript"])
    p.add_argument("--out", "-o", default=None, help="output file")

    def run(args: argparse.Namespace) -> int:
        from vidnas.apps.export import export  # lazy

        res = export(args.ckpt, args.format, args.out)
        check = (
            f"max |difference| to PyTorch {res.max_abs_diff:.2e}"
            if res.max_abs_diff is not None
            else "not test-run"
        )
        print(f"{res.format}: {res.path} ({check})")
        return 0

    p.set_defaults(func=run)


# --------------------------------------------------------------------------- demo


@command
def _demo(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo", help="search, retrain and test on the synthetic dataset, then write report.md"
    )
    p.add_argument("--out", "-o", default="runs/demo", help="demo folder (default: runs/demo)")
    _add_config_args(p, default="demo")
    p.add_argument("--no-progress", action="store_true")

    def run(args: argparse.Namespace) -> int:
        from vidnas.apps.demo import run_demo  # lazy
        from vidnas.report.verdict import terminal_lines  # lazy

        res = run_demo(args.out, args.config, args.overrides, progress=not args.no_progress)
        t = res.test
        total = sum(res.timings.values())
        print(
            f"\ntop-1 {100 * t['top1']:.2f} %, top-5 {100 * t['top5']:.2f} % "
            f"({t['views']} views, {t['gmacs_x_views']} GMACs x views)"
        )
        print("\n".join(terminal_lines(res.verdict)))
        phases = ", ".join(f"{k} {v:.0f} s" for k, v in res.timings.items())
        print(f"time: {total / 60:.1f} min ({phases})")
        print(f"report: {res.report}")
        return 0

    p.set_defaults(func=run)


@command
def _compare(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compare",
        help="searched vs hand-designed vs random networks of the same cost (or --ablation)",
    )
    p.add_argument(
        "--out", "-o", default=None, help="folder (default: runs/compare, or runs/ablation)"
    )
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--random", type=int, default=5, help="uniform random architectures")
    p.add_argument(
        "--ws-samples",
        type=int,
        default=30,
        help="candidates scored by random search with weight sharing",
    )
    p.add_argument(
        "--tolerance",
        type=float,
        default=0.10,
        help="random architectures' MACs within this fraction of the searched one",
    )
    p.add_argument(
        "--ablation",
        action="store_true",
        help="instead: search each subset of {channels, ops, depth} (Table 6)",
    )
    _add_config_args(p, default="cpu-small")
    p.add_argument("--no-progress", action="store_true")

    def run(args: argparse.Namespace) -> int:
        from vidnas.apps.compare import run_ablation, run_compare  # lazy

        cfg = load_config(args.config, args.overrides)
        if args.ablation:
            res = run_ablation(
                cfg, args.out or "runs/ablation", args.seeds[0], progress=not args.no_progress
            )
        else:
            res = run_compare(
                cfg,
                args.out or "runs/compare",
                args.seeds,
                args.random,
                args.ws_samples,
                args.tolerance,
                progress=not args.no_progress,
            )
        print(res.table)
        print(f"written to {res.out}")
        return 0

    p.set_defaults(func=run)


@command
def _bench(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench",
        help="search quality on a task: searched vs a same-cost random population, "
        "baselines, weight-sharing random search, the null, ranking taus",
    )
    p.add_argument("--target", type=float, required=True, metavar="GMACS", help="target cost")
    p.add_argument("--tolerance", type=float, default=0.10, help="population's cost band")
    p.add_argument("--population", type=int, default=12, help="same-cost random networks")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="training seeds")
    p.add_argument("--search-seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--ws-samples", type=int, default=30, help="weight-sharing candidates")
    p.add_argument("--nulls", type=int, default=1, help="shuffled-label searches")
    p.add_argument("--no-init", action="store_true", help="only the from-scratch comparison")
    p.add_argument("--workers", type=int, default=2, help="parallel processes")
    p.add_argument("--out", "-o", default="runs/bench", help="folder (default: runs/bench)")
    _add_config_args(p, default="cpu-small")
    p.add_argument("--no-progress", action="store_true")

    def run(args: argparse.Namespace) -> int:
        from vidnas.apps.bench import BenchSettings, run_bench  # lazy

        cfg = load_config(args.config, args.overrides)
        settings = BenchSettings(
            target_gmacs=args.target,
            tolerance=args.tolerance,
            population=args.population,
            seeds=tuple(args.seeds),
            search_seeds=tuple(args.search_seeds),
            ws_samples=args.ws_samples,
            nulls=args.nulls,
            init=not args.no_init,
            workers=args.workers,
        )
        res = run_bench(cfg, args.out, settings, progress=not args.no_progress)
        print(res.table)
        print(f"written to {res.out}")
        return 0

    p.set_defaults(func=run)


# --------------------------------------------------------------------------- entry point


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vidnas",
        description="Differentiable architecture search for video action recognition.",
    )
    parser.add_argument("--version", action="version", version=f"vidnas {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in _COMMANDS:
        add(sub)
    add_data_command(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    # Overrides may stand anywhere (`train ARCH --out X key=value`); argparse alone only
    # takes a positional list in one run, so the rest of the key=value words join here.
    args, extra = parser.parse_known_args(argv)
    stray = [w for w in extra if "=" not in w or w.startswith("-")]
    if stray:
        parser.error(f"unrecognized arguments: {' '.join(stray)}")
    if extra:
        if not hasattr(args, "overrides"):
            parser.error(f"{args.command} takes no key=value overrides: {' '.join(extra)}")
        args.overrides = [*args.overrides, *extra]
    try:
        job = distributed.from_env()
    except VidnasError as err:
        print(f"vidnas: error: {err}", file=sys.stderr)
        return 2
    if job.main:
        logging.basicConfig(level=logging.INFO, format="%(message)s")
    else:  # under torchrun: rank 0 speaks for the job, the others only warn
        logging.basicConfig(level=logging.WARNING, format=f"[rank {job.rank}] %(message)s")
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (for the process's lifetime)
    try:
        return int(args.func(args) or 0)
    except VidnasError as err:
        print(
            f"vidnas: error{f' (rank {job.rank})' if job.enabled else ''}: {err}", file=sys.stderr
        )
        return 2
    except KeyboardInterrupt:
        print("vidnas: interrupted", file=sys.stderr)
        return 130
    finally:
        distributed.shutdown()


if __name__ == "__main__":
    sys.exit(main())
