"""Analytic cost of every block and network, without running anything.

Cost is multiply-accumulates (MACs) of conv and linear layers per clip, the
convention of fvcore, X3D and the paper's tables (which call them FLOPs);
BatchNorm, ReLU, additions and pooling are not counted. A conv's MACs are
``out_elements x C_in x kernel volume`` whatever its padding or dilation,
which is exactly what ``torch.utils.flop_counter`` counts (at 2 per MAC);
the tests hold the two equal for every block and several networks.
Parameters include BatchNorm's weight and bias (not its running statistics).

The same functions price the supernet's candidate ops (:mod:`vidnas.nas.supernet`),
so the search's expected cost and the derived network's cost are one model.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vidnas.models.ops import op_dilation
from vidnas.models.spec import ArchSpec

Shape = tuple[int, int, int, int]  # C, T, H, W of one clip


@dataclass(frozen=True)
class Cost:
    macs: int = 0
    params: int = 0

    def __add__(self, other: Cost) -> Cost:
        return Cost(self.macs + other.macs, self.params + other.params)

    @property
    def gmacs(self) -> float:
        return self.macs / 1e9


def _strided(n: int, stride: int) -> int:
    # kernel 3, padding 1
    return (n + 2 - 3) // stride + 1


def _conv(c_in: int, c_out: int, kernel: int, out_elems: int) -> Cost:
    return Cost(out_elems * c_out * c_in * kernel, c_out * c_in * kernel)


def _bn(c: int) -> Cost:
    return Cost(0, 2 * c)


def stem_cost(shape: Shape, width: int, stride: int) -> tuple[Cost, Shape]:
    c, t, h, w = shape
    h, w = _strided(h, stride), _strided(w, stride)
    return _conv(c, width, 9, t * h * w) + _bn(width), (width, t, h, w)


def transition_cost(shape: Shape, width: int, stride: int) -> tuple[Cost, Shape]:
    c, t, h, w = shape
    h, w = _strided(h, stride), _strided(w, stride)
    n = t * h * w
    cost = _conv(c, width, 9, n) + _bn(width) + _conv(width, width, 3, n) + _bn(width)
    return cost, (width, t, h, w)


def op_cost(name: str, shape: Shape) -> Cost:
    """A stack-layer op at its input shape (which it keeps); ``skip`` is free."""
    if op_dilation(name) is None:
        return Cost()
    c, t, h, w = shape
    n = t * h * w
    return _conv(c, c, 9, n) + _bn(c) + _conv(c, c, 3, n) + _bn(c)


def classifier_cost(width: int, num_classes: int) -> Cost:
    return Cost(width * num_classes, width * num_classes + num_classes)


@dataclass(frozen=True)
class StageCost:
    name: str
    width: int
    out_shape: Shape
    ops: tuple[str, ...]
    cost: Cost


@dataclass(frozen=True)
class NetworkCost:
    """Per-stage breakdown of a network's cost at its input shape."""

    input: Shape
    rows: tuple[StageCost, ...] = field(default_factory=tuple)

    @property
    def total(self) -> Cost:
        out = Cost()
        for r in self.rows:
            out = out + r.cost
        return out

    @property
    def macs(self) -> int:
        return self.total.macs

    @property
    def params(self) -> int:
        return self.total.params

    def table(self) -> str:
        head = ("stage", "width", "output TxHxW", "stack layers", "GMACs", "params (M)")
        rows = [head]
        for r in self.rows:
            _c, t, h, w = r.out_shape
            rows.append(
                (
                    r.name,
                    str(r.width),
                    f"{t}x{h}x{w}" if r.name != "classifier" else "-",
                    ", ".join(r.ops) if r.ops else "-",
                    f"{r.cost.macs / 1e9:.4f}",
                    f"{r.cost.params / 1e6:.4f}",
                )
            )
        rows.append(("total", "", "", "", f"{self.macs / 1e9:.4f}", f"{self.params / 1e6:.4f}"))
        widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        lines.insert(len(lines) - 1, lines[1])
        return "\n".join(lines)


def network_cost(spec: ArchSpec, input_shape: Shape | None = None) -> NetworkCost:
    """Cost of the network ``spec`` builds, at its own input shape unless one is given."""
    shape: Shape = tuple(input_shape or spec.input)  # type: ignore[assignment]
    rows = []
    cost, shape = stem_cost(shape, spec.stem_width, spec.stem_stride)
    rows.append(StageCost("1 (stem)", spec.stem_width, shape, (), cost))
    for i, st in enumerate(spec.stages):
        cost, shape = transition_cost(shape, st.width, st.stride)
        for op in st.ops:
            cost = cost + op_cost(op, shape)
        rows.append(StageCost(str(i + 2), st.width, shape, st.ops, cost))
    rows.append(
        StageCost(
            "classifier", spec.num_classes, shape, (), classifier_cost(shape[0], spec.num_classes)
        )
    )
    return NetworkCost(tuple(input_shape or spec.input), tuple(rows))  # type: ignore[arg-type]
