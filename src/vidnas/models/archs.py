"""Built-in architectures, by name, and resolution of ``ARCH`` arguments.

``paper-k400`` is the network of the paper's Table 3, stored as data. Its table
is inconsistent: stage 4 says 6 stack layers and lists 6 ops, but stage 5 says
3 and lists 2, and stage 6 says 4 and lists 3. We follow the ops as listed
(12 stack layers), the only reading that names every layer's op.

``r2plus1d-baseline`` is the hand-designed reference in the space: the middle
candidate width of every stage and every stack layer present as ``dil1`` (a
plain R(2+1)D network). It is derived from whatever space is given, so it
scales with the space's width multiplier for fair comparisons.

:func:`hand_designed_spec` is what an engineer who knows the task needs long
temporal context would build by hand at a given cost, without searching: the
the plain R(2+1)D block with temporal dilations that double along the network
and start over (1, 2, 4, 1, 2, 4, ...), the recipe of WaveNet and temporal
convolutional networks, with as many layers per stage as the cost allows.
``vidnas compare`` retrains it at the searched network's cost.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from importlib import resources
from pathlib import Path

from vidnas.config import SpaceConfig
from vidnas.errors import SpecError
from vidnas.models.cost import network_cost
from vidnas.models.ops import op_dilation
from vidnas.models.space import SearchSpace
from vidnas.models.spec import ArchSpec, StageSpec


def _paper_k400(space: SearchSpace | None) -> ArchSpec:
    text = (resources.files("vidnas.models") / "specs" / "paper-k400.json").read_text()
    return ArchSpec.from_json(text, "paper-k400")


def baseline_spec(
    space: SearchSpace, input_shape: tuple[int, int, int, int], num_classes: int
) -> ArchSpec:
    conv = space.conv_ops
    if not conv:
        raise SpecError("r2plus1d-baseline needs a space with at least one conv op")
    stages = tuple(
        StageSpec(st.middle_width, st.stride, (conv[0],) * st.max_layers) for st in space.stages
    )
    return ArchSpec(
        tuple(input_shape),
        space.stem_width,
        space.stem_stride,
        stages,
        num_classes,
        name="r2plus1d-baseline",
    )


def hand_designed_spec(
    space: SearchSpace,
    input_shape: tuple[int, int, int, int],
    num_classes: int,
    target_macs: float,
) -> ArchSpec:
    """The hand-designed network (module docstring) whose MACs are closest to
    ``target_macs``: every stage at its smallest, middle or largest width alike, any
    number of layers per stage, dilations 1, 2, 4, ... in order along the kept layers.
    Ties go to the deeper network. Only cost picks among them, never accuracy."""
    conv = sorted(space.conv_ops, key=lambda op: op_dilation(op) or 0)
    if not conv:
        raise SpecError("a hand-designed network needs a space with at least one conv op")
    pick = (lambda st: st.widths[0], lambda st: st.middle_width, lambda st: st.widths[-1])
    best: tuple[float, int, ArchSpec] | None = None
    for width in pick:
        for depths in itertools.product(*(range(st.max_layers + 1) for st in space.stages)):
            stages, n = [], 0
            for st, depth in zip(space.stages, depths):
                ops = tuple(conv[(n + i) % len(conv)] for i in range(depth))
                stages.append(StageSpec(width(st), st.stride, ops))
                n += depth
            spec = ArchSpec(
                tuple(input_shape),
                space.stem_width,
                space.stem_stride,
                tuple(stages),
                num_classes,
                name="hand-designed",
            )
            gap = abs(network_cost(spec).macs - target_macs)
            if best is None or (gap, -n) < best[:2]:
                best = (gap, -n, spec)
    assert best is not None
    return best[2]


def _r2plus1d(space: SearchSpace | None) -> ArchSpec:
    space = space or SearchSpace.from_config(SpaceConfig())
    return baseline_spec(space, (3, 16, 224, 224), 400)


BUILTIN_ARCHS: dict[str, Callable[[SearchSpace | None], ArchSpec]] = {
    "paper-k400": _paper_k400,
    "r2plus1d-baseline": _r2plus1d,
}


def resolve_arch(
    arch: str | Path,
    space: SearchSpace | None = None,
    input_shape: tuple[int, int, int, int] | None = None,
    num_classes: int | None = None,
) -> ArchSpec:
    """A built-in name or a path to an ``arch.json``, optionally re-targeted to another
    input shape or class count (the layers stay as they are)."""
    name = str(arch)
    if name in BUILTIN_ARCHS:
        spec = BUILTIN_ARCHS[name](space)
    elif Path(name).is_file():
        spec = ArchSpec.load(name)
    else:
        raise SpecError(
            f"'{name}' is neither a built-in architecture ({', '.join(BUILTIN_ARCHS)}) "
            "nor an existing arch.json"
        )
    changes = {}
    if input_shape is not None:
        changes["input"] = tuple(input_shape)
    if num_classes is not None:
        changes["num_classes"] = num_classes
    return spec.replace(**changes) if changes else spec
