"""``vidnas data``: make the synthetic dataset and check any dataset."""

from __future__ import annotations

import argparse
import time
import typing
from dataclasses import replace
from pathlib import Path

from vidnas.config import PRESETS, Config, SynthConfig, load_config


def _guess_format(root: Path) -> str:
    """The format of a dataset folder, from the files that mark each layout."""
    for folder in (root / "ucfTrainTestlist", root / "annotations", root):
        if (folder / "classInd.txt").is_file():
            return "ucf101"
    if (root / "annotations" / "train.csv").is_file() or (root / "train.csv").is_file():
        return "kinetics"
    return "folder"


def _config_for(source: str, overrides: list[str]) -> Config:
    if source not in PRESETS and not source.endswith((".yaml", ".yml")) and Path(source).is_dir():
        base = [f"data.root={source}", f"data.format={_guess_format(Path(source))}"]
        return load_config(None, [*base, *overrides])
    return load_config(source, overrides)


def _synth(dsub: argparse._SubParsersAction) -> None:
    d = SynthConfig()
    p = dsub.add_parser(
        "synth",
        help="write a synthetic dataset (UCF101 layout, MPEG-4 AVI) to a folder",
        description="Write a synthetic action dataset: classes that differ only in motion "
        "(--task motion: how small objects move, 3-9 frames of context), or one of the "
        "search-quality suite's tasks: echo (which colour each frame's comes back as "
        "--lag frames later: lag + 1 frames of context), detail (the direction of fine "
        "stripes on moving objects: spatial detail), context (small objects, 5-6 frames "
        "of motion).",
    )
    p.add_argument("out", metavar="OUT", help="folder to create (must be absent or empty)")
    tasks = typing.get_args(typing.get_type_hints(SynthConfig)["task"])
    p.add_argument("--task", choices=tasks, default=d.task, help=f"({d.task})")
    p.add_argument(
        "--classes",
        type=int,
        default=None,
        help=f"motion: 2..10 (default {d.classes}); echo, detail, context: 4",
    )
    p.add_argument("--lag", type=int, default=d.lag, help=f"echo: ({d.lag})")
    p.add_argument(
        "--per-class", type=int, default=d.per_class, help=f"videos per class ({d.per_class})"
    )
    p.add_argument("--frames", type=int, default=d.frames, help=f"frames per video ({d.frames})")
    p.add_argument(
        "--size", type=int, default=d.size, help=f"frame width; height is 3/4 of it ({d.size})"
    )
    p.add_argument("--fps", type=int, default=d.fps, help=f"frame rate ({d.fps})")
    p.add_argument("--seed", type=int, default=d.seed, help=f"random seed ({d.seed})")

    def run(args: argparse.Namespace) -> int:
        from vidnas.data.synth import frame_size, write_synthetic  # lazy

        classes = args.classes or (4 if args.task != "motion" else d.classes)
        synth = replace(
            d,
            task=args.task,
            lag=args.lag,
            classes=classes,
            per_class=args.per_class,
            frames=args.frames,
            size=args.size,
            fps=args.fps,
            seed=args.seed,
        )
        start = time.perf_counter()
        out = write_synthetic(Path(args.out), synth)
        h, w = frame_size(synth.size)
        print(
            f"{out}: {synth.classes * synth.per_class} videos, {synth.classes} classes, "
            f"{synth.frames} frames of {w}x{h} at {synth.fps} fps "
            f"({time.perf_counter() - start:.1f} s)"
        )
        return 0

    p.set_defaults(func=run)


def _check(dsub: argparse._SubParsersAction) -> None:
    p = dsub.add_parser(
        "check",
        help="count a dataset's videos per split and class and list every unreadable file",
        description=(
            "Decode the first and last frame of every video of a dataset. CONFIG_OR_ROOT is "
            "a preset, a YAML config or a dataset folder (its format is guessed: UCF101 "
            "lists, Kinetics CSVs, else class folders). Exits 1 if a video is unreadable "
            "or missing."
        ),
    )
    p.add_argument("source", metavar="CONFIG_OR_ROOT")
    p.add_argument(
        "overrides", nargs="*", metavar="key=value", help="dotted overrides, e.g. data.ucf_split=2"
    )
    p.add_argument("--split", choices=("train", "test", "both"), default="both")
    p.add_argument("--workers", type=int, default=2, help="decoding threads (default 2)")

    def run(args: argparse.Namespace) -> int:
        from vidnas.data.check import check_dataset, format_report  # lazy

        cfg = _config_for(args.source, args.overrides)
        splits = ("train", "test") if args.split == "both" else (args.split,)
        reports = check_dataset(cfg, splits, workers=args.workers)
        print(format_report(cfg, reports))
        return 0 if all(r.ok for r in reports.values()) else 1

    p.set_defaults(func=run)


def add_data_command(sub: argparse._SubParsersAction) -> None:
    """Register ``vidnas data {synth,check}`` on the top-level subparsers."""
    p = sub.add_parser("data", help="make the synthetic dataset; check a dataset")
    dsub = p.add_subparsers(dest="data_command", metavar="SUBCOMMAND", required=True)
    _synth(dsub)
    _check(dsub)
