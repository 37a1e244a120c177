"""The search space (paper Tables 1-2, docs/design.md "The search space") as an
immutable value.

A space is a fixed stem followed by searched stages. Each stage has a transition
layer whose output width is one of its candidate widths, then up to
``max_layers`` stack layers, each one of the space's ops. Depth is searched
through ``skip``: a derived stage keeps only its non-skip layers.

The paper numbers the stem "stage 1" and the searched stages 2-7; here
``stages[0]`` is the paper's stage 2, and :meth:`Stage.number` gives the
paper's number for display.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass, replace

from vidnas.config import Config, SpaceConfig
from vidnas.errors import ConfigError
from vidnas.models.ops import SKIP, is_conv_op, op_dilation


@dataclass(frozen=True)
class Stage:
    """A searched stage: candidate widths of its transition, stack depth, transition stride."""

    index: int
    widths: tuple[int, ...]
    max_layers: int
    stride: int

    @property
    def number(self) -> int:
        """The paper's stage number (the stem is stage 1)."""
        return self.index + 2

    @property
    def middle_width(self) -> int:
        """The width used when channels are not searched (upper middle for even counts)."""
        return self.widths[len(self.widths) // 2]


@dataclass(frozen=True)
class SearchSpace:
    stem_width: int
    stem_stride: int
    stages: tuple[Stage, ...]
    ops: tuple[str, ...]

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_config(cls, cfg: SpaceConfig) -> SearchSpace:
        """Validate a space config and apply its width multiplier."""
        m = cfg.width_multiplier
        if not m > 0:
            raise ConfigError(f"space.width_multiplier: must be > 0, got {m}")
        if not cfg.stages:
            raise ConfigError("space.stages: the space needs at least one searched stage")
        if not cfg.ops:
            raise ConfigError("space.ops: the op set is empty")
        seen: set[str] = set()
        for i, op in enumerate(cfg.ops):
            try:
                op_dilation(op)
            except ValueError as err:
                raise ConfigError(f"space.ops.{i}: {err}") from None
            if op in seen:
                raise ConfigError(f"space.ops.{i}: op {op!r} is listed twice")
            seen.add(op)
        if cfg.stem_stride not in (1, 2):
            raise ConfigError(f"space.stem_stride: must be 1 or 2, got {cfg.stem_stride}")
        stem = _scale(cfg.stem_width, m, "space.stem_width")
        stages = []
        for i, st in enumerate(cfg.stages):
            key = f"space.stages.{i}"
            if not st.widths:
                raise ConfigError(f"{key}.widths: the candidate list is empty")
            widths = tuple(_scale(w, m, f"{key}.widths") for w in st.widths)
            if len(set(widths)) != len(widths):
                raise ConfigError(
                    f"{key}.widths: candidates {list(st.widths)} are not distinct"
                    + (f" after width_multiplier {m} ({list(widths)})" if m != 1 else "")
                )
            if st.max_layers < 0:
                raise ConfigError(f"{key}.max_layers: must be >= 0, got {st.max_layers}")
            if st.stride not in (1, 2):
                raise ConfigError(f"{key}.stride: must be 1 or 2, got {st.stride}")
            stages.append(Stage(i, widths, st.max_layers, st.stride))
        return cls(stem, cfg.stem_stride, tuple(stages), tuple(cfg.ops))

    def restrict(self, dimensions: Collection[str] = ("channels", "ops", "depth")) -> SearchSpace:
        """The sub-space that searches only ``dimensions`` (paper Table 6).

        A dimension that is not searched is fixed (docs/design.md, "Ablations"):
        widths to the middle candidate, ops to the first conv op (``dil1``),
        depth to every layer present. Searching depth alone uses {first conv op, skip}.
        """
        unknown = set(dimensions) - {"channels", "ops", "depth"}
        if unknown or not dimensions:
            raise ConfigError(
                f"search.dimensions: expected some of channels, ops, depth, got {list(dimensions)}"
            )
        channels, ops, depth = (d in dimensions for d in ("channels", "ops", "depth"))
        conv = tuple(o for o in self.ops if is_conv_op(o))
        if not conv:
            raise ConfigError("space.ops: restricting the space needs at least one conv op")
        has_skip = SKIP in self.ops
        if ops and depth:
            new_ops = self.ops
        elif ops:
            new_ops = conv
        elif depth:
            new_ops = (conv[0], SKIP) if has_skip else (conv[0],)
        else:
            new_ops = (conv[0],)
        stages = tuple(
            replace(st, widths=st.widths if channels else (st.middle_width,)) for st in self.stages
        )
        return replace(self, stages=stages, ops=new_ops)

    # ------------------------------------------------------------------ counting

    @property
    def conv_ops(self) -> tuple[str, ...]:
        return tuple(o for o in self.ops if is_conv_op(o))

    @property
    def num_layers(self) -> int:
        """Stack layers over all stages (26 in the paper's space)."""
        return sum(st.max_layers for st in self.stages)

    @property
    def num_conv_layers(self) -> int:
        """Layers of the deepest network: stem + one transition per stage + every stack layer
        (the paper's 33; each block counted once, as the paper counts)."""
        return 1 + len(self.stages) + self.num_layers

    @property
    def width_choices(self) -> int:
        return math.prod(len(st.widths) for st in self.stages)

    @property
    def op_choices(self) -> int:
        return len(self.ops) ** self.num_layers

    @property
    def size(self) -> int:
        """Architectures as the paper counts them: width choices x ops^layers
        (different skip placements count as different architectures)."""
        return self.width_choices * self.op_choices

    @property
    def distinct_networks(self) -> int:
        """Distinct derived networks: skip placements that leave the same layers count once."""
        n_conv = len(self.conv_ops)
        total = self.width_choices
        for st in self.stages:
            if SKIP in self.ops:
                total *= sum(n_conv**k for k in range(st.max_layers + 1))
            else:
                total *= n_conv**st.max_layers
        return total

    # ------------------------------------------------------------------ geometry

    @property
    def total_stride(self) -> int:
        return self.stem_stride * math.prod(st.stride for st in self.stages)

    def check_input(self, input_shape: tuple[int, ...]) -> None:
        """Refuse a clip too small for the space's strides (before anything runs)."""
        _c, t, h, w = input_shape
        if t < 1 or min(h, w) < self.total_stride:
            raise ConfigError(
                f"input: {h}x{w} frames are too small for this space, whose spatial stride "
                f"is {self.total_stride} in all; use at least {self.total_stride}x"
                f"{self.total_stride}"
            )

    # ------------------------------------------------------------------ display

    def table(self) -> str:
        rows = [("stage", "candidate widths", "max stack layers", "stride")]
        rows.append(("1 (stem)", str(self.stem_width), "0", str(self.stem_stride)))
        for st in self.stages:
            rows.append(
                (str(st.number), ", ".join(map(str, st.widths)), str(st.max_layers), str(st.stride))
            )
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        lines += [
            "",
            f"stack-layer ops: {', '.join(self.ops)}",
            f"conv layers (stem + transitions + stack layers): {self.num_conv_layers}",
            f"width choices: {self.width_choices}",
            f"op choices: {len(self.ops)}^{self.num_layers} = {self.op_choices}",
            f"architectures: {self.size}",
            f"distinct derived networks (skip placements merged): {self.distinct_networks}",
        ]
        return "\n".join(lines)


def search_space(cfg: Config) -> SearchSpace:
    """The space a config searches: its space, checked against its input and
    restricted to the searched dimensions (``search.dimensions``). Built once per run."""
    space = SearchSpace.from_config(cfg.space)
    space.check_input(cfg.input)
    return space.restrict(cfg.search.dimensions)


def _scale(width: int, m: float, key: str) -> int:
    if width <= 0:
        raise ConfigError(f"{key}: widths must be > 0, got {width}")
    scaled = round(width * m)
    if scaled < 1:
        raise ConfigError(f"{key}: width {width} x multiplier {m} rounds to 0")
    return scaled
