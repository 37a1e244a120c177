"""The architecture spec: the one format between the search and everything after it.

A spec is a small JSON document::

    {
      "format": "vidnas-arch/1",
      "name": "paper-k400",
      "input": [3, 16, 224, 224],
      "stem": {"width": 32, "stride": 2},
      "stages": [{"width": 64, "stride": 2, "ops": []},
                 {"width": 160, "stride": 2, "ops": ["dil4", "dil1"]}, ...],
      "num_classes": 400
    }

``ops`` lists the layers a stage keeps, in order; ``skip`` layers of the
search are already dropped, so every op is ``dil<d>``. Loading validates every
field and names the one that is wrong; extra top-level keys whose names start
with ``x-`` are kept as free-form metadata (the search records its run there).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vidnas.engine.checkpoint import atomic_write_text
from vidnas.errors import SpecError
from vidnas.models.ops import SKIP, op_dilation

FORMAT = "vidnas-arch/1"

__all__ = ["FORMAT", "ArchSpec", "SpecError", "StageSpec"]


@dataclass(frozen=True)
class StageSpec:
    width: int
    stride: int
    ops: tuple[str, ...] = ()


@dataclass(frozen=True)
class ArchSpec:
    input: tuple[int, int, int, int]
    stem_width: int
    stem_stride: int
    stages: tuple[StageSpec, ...]
    num_classes: int
    name: str | None = None
    meta: Mapping[str, Any] = field(default_factory=dict, compare=False)

    @property
    def num_layers(self) -> int:
        return sum(len(st.ops) for st in self.stages)

    def replace(self, **changes: Any) -> ArchSpec:
        out = dataclasses.replace(self, **changes)
        return ArchSpec.from_dict(out.to_dict())  # re-validate

    # ------------------------------------------------------------------ JSON

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"format": FORMAT}
        if self.name:
            out["name"] = self.name
        out["input"] = list(self.input)
        out["stem"] = {"width": self.stem_width, "stride": self.stem_stride}
        out["stages"] = [
            {"width": st.width, "stride": st.stride, "ops": list(st.ops)} for st in self.stages
        ]
        out["num_classes"] = self.num_classes
        out.update(self.meta)
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    def save(self, path: str | Path) -> None:
        atomic_write_text(Path(path), self.to_json())

    @classmethod
    def from_dict(cls, data: Any) -> ArchSpec:
        if not isinstance(data, Mapping):
            raise SpecError(f"an architecture spec is a JSON object, got {type(data).__name__}")
        known = {"format", "name", "input", "stem", "stages", "num_classes"}
        for key in data:
            if key not in known and not str(key).startswith("x-"):
                raise SpecError(
                    f"unknown field '{key}' (fields: {', '.join(sorted(known))}; "
                    "free-form metadata goes under keys starting with 'x-')"
                )
        fmt = data.get("format", FORMAT)
        if fmt != FORMAT:
            raise SpecError(f"format: expected '{FORMAT}', got {fmt!r}")
        name = data.get("name")
        if name is not None and not isinstance(name, str):
            raise SpecError(f"name: expected a string, got {name!r}")
        shape = _require(data, "input", "input")
        if not isinstance(shape, list) or len(shape) != 4 or not all(_is_pos_int(v) for v in shape):
            raise SpecError(f"input: expected [C, T, H, W] of positive integers, got {shape!r}")
        if shape[0] != 3:
            raise SpecError(f"input: expected 3 (RGB) channels, got {shape[0]}")
        stem = _require(data, "stem", "stem")
        if not isinstance(stem, Mapping):
            raise SpecError(f"stem: expected an object with width and stride, got {stem!r}")
        _only(stem, {"width", "stride"}, "stem")
        stem_width = _pos_int(_require(stem, "width", "stem.width"), "stem.width")
        stem_stride = _stride(stem.get("stride", 2), "stem.stride")
        raw_stages = _require(data, "stages", "stages")
        if not isinstance(raw_stages, list) or not raw_stages:
            raise SpecError(f"stages: expected a non-empty list, got {raw_stages!r}")
        stages = []
        for i, st in enumerate(raw_stages):
            where = f"stages[{i}]"
            if not isinstance(st, Mapping):
                raise SpecError(f"{where}: expected an object, got {st!r}")
            _only(st, {"width", "stride", "ops"}, where)
            width = _pos_int(_require(st, "width", f"{where}.width"), f"{where}.width")
            stride = _stride(st.get("stride", 2), f"{where}.stride")
            ops = st.get("ops", [])
            if not isinstance(ops, list):
                raise SpecError(f"{where}.ops: expected a list of op names, got {ops!r}")
            for j, op in enumerate(ops):
                if op == SKIP:
                    raise SpecError(
                        f"{where}.ops[{j}]: 'skip' does not belong in a spec; list only the "
                        "layers the stage keeps"
                    )
                if not isinstance(op, str):
                    raise SpecError(f"{where}.ops[{j}]: expected an op name, got {op!r}")
                try:
                    op_dilation(op)
                except ValueError as err:
                    raise SpecError(f"{where}.ops[{j}]: {err}") from None
            stages.append(StageSpec(width, stride, tuple(ops)))
        num_classes = _pos_int(_require(data, "num_classes", "num_classes"), "num_classes")
        meta = {k: v for k, v in data.items() if str(k).startswith("x-")}
        return cls(tuple(shape), stem_width, stem_stride, tuple(stages), num_classes, name, meta)

    @classmethod
    def from_json(cls, text: str, source: str = "<string>") -> ArchSpec:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise SpecError(f"{source}: not valid JSON ({err})") from err
        try:
            return cls.from_dict(data)
        except SpecError as err:
            raise SpecError(f"{source}: {err}") from None

    @classmethod
    def load(cls, path: str | Path) -> ArchSpec:
        path = Path(path)
        try:
            text = path.read_text()
        except OSError as err:
            raise SpecError(f"cannot read architecture spec {path}: {err.strerror}") from err
        return cls.from_json(text, str(path))


def _require(data: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in data:
        raise SpecError(f"{where}: missing")
    return data[key]


def _only(data: Mapping[str, Any], keys: set[str], where: str) -> None:
    for k in data:
        if k not in keys:
            raise SpecError(f"{where}.{k}: unknown field (fields: {', '.join(sorted(keys))})")


def _is_pos_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v > 0


def _pos_int(v: Any, where: str) -> int:
    if not _is_pos_int(v):
        raise SpecError(f"{where}: expected a positive integer, got {v!r}")
    return v


def _stride(v: Any, where: str) -> int:
    if v not in (1, 2) or isinstance(v, bool):
        raise SpecError(f"{where}: expected 1 or 2, got {v!r}")
    return v
