"""The ``vidnas`` command: a thin layer over the Python API.

Each subcommand parses its arguments, calls one API function and prints the
result; nothing here is needed to use vidnas from Python. Errors a user can
fix (bad config, spec, checkpoint or data) print one clear line and exit 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from vidnas.checkpoint import CheckpointError
from vidnas.config import ConfigError, load_config
from vidnas.data.cli import add_data_command
from vidnas.data.errors import DataError
from vidnas.spec import SpecError

USER_ERRORS: tuple[type[Exception], ...] = (ConfigError, SpecError, CheckpointError, DataError)

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
        help="preset (paper, cpu-small, tiny) or YAML file"
        + (f" (default: {default})" if default else " (default: paper)"),
    )
    p.add_argument(
        "overrides", nargs="*", metavar="key=value", help="dotted overrides, e.g. search.epochs=5"
    )


def _parse_shape(text: str) -> tuple[int, int, int, int]:
    from vidnas.config import parse_shape

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
        from vidnas.space import SearchSpace

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
        from vidnas.archs import resolve_arch
        from vidnas.cost import network_cost
        from vidnas.space import SearchSpace

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


# --------------------------------------------------------------------------- entry point


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vidnas",
        description="Differentiable architecture search for video action recognition.",
    )
    from vidnas import __version__

    parser.add_argument("--version", action="version", version=f"vidnas {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in _COMMANDS:
        add(sub)
    add_data_command(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except USER_ERRORS as err:
        print(f"vidnas: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("vidnas: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
