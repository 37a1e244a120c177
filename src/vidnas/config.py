"""Typed run configuration: dataclasses filled from presets, YAML files and dotted overrides.

A run is described by one :class:`Config`. It is assembled in layers, each
overriding the last: the dataclass defaults (the paper's space and schedule with the search recipe
of docs/design.md),
a preset or YAML file (which may name a ``base:`` preset or file of its own),
and ``key=value`` overrides from the command line (``search.epochs=5``,
``space.stages.2.max_layers=3``). The merged mapping is then converted into
dataclasses strictly: an unknown key or a value of the wrong type raises
:class:`ConfigError` naming the dotted key and what was expected, so a typo
never silently falls back to a default.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import types
import typing
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Union

import yaml

from vidnas.errors import ConfigError

__all__ = [
    "PRESETS",
    "Config",
    "ConfigError",
    "config_from_dict",
    "dump_config",
    "load_config",
    "preset_path",
    "with_overrides",
]


# --------------------------------------------------------------------------- sections


@dataclass
class StageSpace:
    """One searched stage: its head's candidate widths, stack depth and spatial stride."""

    widths: list[int]
    max_layers: int
    stride: int = 2


def _paper_stages() -> list[StageSpace]:
    # Paper Table 1 (stages 2-7); stage 1 is the fixed stem.
    return [
        StageSpace([48, 56, 64], 0, 2),
        StageSpace([72, 96, 112], 5, 2),
        StageSpace([128, 144, 160, 176], 10, 2),
        StageSpace([192, 208, 224], 5, 2),
        StageSpace([240, 256, 272, 288], 5, 1),
        StageSpace([480, 496, 512], 1, 1),
    ]


@dataclass
class SpaceConfig:
    """The search space as data (docs/design.md, "The search space"). Widths are multiplied by
    ``width_multiplier`` and rounded; ``ops`` are ``dil<d>`` (the basic operation
    with temporal dilation d) and ``skip``."""

    stem_width: int = 32
    stem_stride: int = 2
    stages: list[StageSpace] = field(default_factory=_paper_stages)
    ops: list[str] = field(default_factory=lambda: ["dil1", "dil2", "dil4", "skip"])
    width_multiplier: float = 1.0


@dataclass
class SynthConfig:
    """The built-in synthetic action dataset (written as real video files; see
    ``vidnas.data.synth`` for its classes)."""

    # What tells the classes apart (one module per task in vidnas.data.synth;
    # docs/design.md, "Data"). motion: how small objects move (up to 10 classes; 3-9
    # frames of context). The task suite: echo (every frame's colour comes back 1-4
    # of 5 colours on ``lag`` frames later: ``lag + 1`` frames of context), detail
    # (the direction of fine stripes on moving objects: spatial detail, one frame)
    # and context (small objects, 5-6 frames of motion: mid-range context), 4
    # classes each.
    task: Literal["motion", "echo", "detail", "context"] = "motion"
    # motion: the first ``classes`` of the 10 built-in motion classes; others: 4.
    classes: int = 10
    per_class: int = 30
    # Frames per video.
    frames: int = 48
    # Frame width in pixels; the height is 3/4 of it (UCF101's 320x240 aspect).
    size: int = 96
    fps: int = 25
    seed: int = 0
    # echo task: frames between a colour and its echo.
    lag: int = 8


@dataclass
class DataConfig:
    """Where the videos are and how clips are cut from them (docs/design.md, "Data")."""

    format: Literal["synthetic", "ucf101", "kinetics", "folder", "list"] = "synthetic"
    root: str = "data/synthetic"
    # Kinetics: the CSV of the training split; list: the `path,label` file of the training
    # split; UCF101: the folder of classInd.txt and the split lists (default: looked for).
    # test_annotations: the same for the test split (Kinetics and list).
    annotations: str | None = None
    test_annotations: str | None = None
    ucf_split: int = 1
    # Distance in frames between consecutive sampled frames (1: consecutive, the paper).
    sampling_rate: int = 1
    # Training frames are resized to this H x W, then randomly cropped to the input size.
    train_resize: tuple[int, int] = (256, 342)
    # If set, short-side scale jitter [min, max] replaces the fixed resize.
    short_side_jitter: tuple[int, int] | None = None
    hflip: bool = True
    test_short_side: int = 256
    mean: tuple[float, float, float] = (0.45, 0.45, 0.45)
    std: tuple[float, float, float] = (0.225, 0.225, 0.225)
    num_workers: int = 2
    # Decoder threads per video; null: 1 in DataLoader workers and below 640x360, else up to 4.
    decode_threads: int | None = None
    # Fractions of the training list used for train / validate / inference while searching.
    search_split: tuple[float, float, float] = (0.6, 0.2, 0.2)
    synth: SynthConfig = field(default_factory=SynthConfig)


@dataclass
class SearchConfig:
    """The bilevel search (paper section 3.3 and appendix A.1)."""

    epochs: int = 70
    # Epochs of weight steps only before the architecture moves; null (the default):
    # follow the budget, ceil(epochs / 7), the paper's 10 of 70 (docs/design.md, "The
    # search schedule").
    warmup_epochs: int | None = None
    batch_size: int = 8
    # Weights w: AdamW (the paper: SGD at 0.02) with cosine annealing, after
    # w_lr_warmup_epochs of linear warm-up (at most a quarter of the run). In the
    # relaxed supernet every op's gradient is scaled by its probability; Adam's
    # per-weight step undoes that scale, SGD's does not, and with SGD the supernet
    # stayed at chance (docs/design.md, "The search recipe").
    w_optimizer: Literal["sgd", "adamw"] = "adamw"
    w_lr: float = 0.002
    w_lr_min: float = 1e-4
    w_lr_warmup_epochs: float = 1.0
    w_momentum: float = 0.9
    w_weight_decay: float = 4e-5
    # Architecture alpha, beta: Adam at a fixed learning rate. arch_eps is Adam's
    # epsilon: gradients much smaller than it take plain SGD steps of arch_lr /
    # arch_eps x gradient instead of being normalised up to steps of about arch_lr,
    # which is how Adam turns a gradient of noise into certainty. null (the
    # default): follow the budget, 0.3 * sqrt(675 / architecture steps); the paper's
    # 3e-4 moves alpha by hundredths in a search of a few hundred steps
    # (docs/design.md, "The search recipe" and "The search schedule").
    arch_lr: float | None = None
    arch_betas: tuple[float, float] = (0.5, 0.999)
    arch_eps: float = 0.01
    arch_weight_decay: float = 0.0
    # Cost term lambda * log_k(C) of eq. 5; lambda and k act as one knob (lambda / ln k).
    cost_lambda: float = 0.1
    cost_base: float = 10.0
    # If set, the cost term pulls the expected GMACs towards this budget instead, and
    # the derivation takes the most probable architecture whose GMACs are within
    # budget_tolerance (a fraction) of it (docs/design.md, "Derivation").
    budget_gmacs: float | None = None
    budget_tolerance: float = 0.1
    # Which dimensions are searched (paper Table 6); the rest are fixed (docs/design.md).
    dimensions: list[Literal["channels", "ops", "depth"]] = field(
        default_factory=lambda: ["channels", "ops", "depth"]
    )
    grad_clip: float | None = 5.0
    checkpoint_every: int = 50
    # Per-epoch evaluation on this many batches of val and inference (a seeded sample,
    # the same every epoch); null: all of them.
    eval_batches: int | None = None
    # relaxed: every op of every layer runs in both steps (the paper). sampled: the
    # weight step runs one op per layer drawn from softmax(alpha), the architecture
    # step two, renormalised (DenseNAS, ProxylessNAS); transitions stay relaxed.
    mode: Literal["relaxed", "sampled"] = "relaxed"
    # Starting scale of each supernet residual block's last BatchNorm. At 0 (the
    # paper's zero-init) every block starts as the identity, which is also what
    # skip is: the ops cannot differ and alpha gets no gradient until warm-up has
    # grown those scales, which a short search never does. null (the default):
    # follow the space's depth, 1 / sqrt(searched layers) (docs/design.md, "The
    # search recipe" and "The search schedule").
    residual_init: float | None = None
    # A layer's op or a stage's width whose probability on the derived path is below
    # this is reported as undecided (docs/design.md, "Search decisiveness").
    decided_threshold: float = 0.6
    # A control: permute the labels of the search's splits (seeded), so nothing is
    # learnable; a search that still "decides" is deciding on an artifact.
    shuffle_labels: bool = False


@dataclass
class TrainConfig:
    """Retraining of a derived or built-in network (appendix A.1)."""

    epochs: int = 150
    batch_size: int = 16
    # AdamW at 0.002 after 2 epochs of linear warm-up, blocks starting live
    # (residual_init 1); the paper: SGD at 0.1, no warm-up, zero-initialised
    # blocks. With SGD every network that learned the echo task was bimodal over
    # seeds (50 or 100 %), with AdamW the ones that have what the task needs
    # score 99-100 % on every seed; from zero-initialised blocks no network
    # learned it, every one trained as its transitions alone (docs/design.md,
    # "The search recipe"; docs/results.md, "Live residual blocks").
    lr: float = 0.002
    lr_min: float = 1e-4
    # Linear warm-up of the learning rate over this many epochs (at most a quarter
    # of the run) before the cosine. Blocks that start live take the first steps at
    # the full rate badly: the demo's networks spent 5 of 12 epochs at chance
    # without it.
    lr_warmup_epochs: float = 2.0
    # adamw or sgd (momentum only for sgd); see search.w_optimizer.
    optimizer: Literal["sgd", "adamw"] = "adamw"
    momentum: float = 0.9
    weight_decay: float = 4e-5
    dropout: float = 0.5
    # Starting scale of every residual block's last BatchNorm; 0 starts each block as
    # the identity (docs/design.md, "Initialisation").
    residual_init: float = 1.0
    grad_clip: float | None = None
    # Fraction of the training list held out for per-epoch validation; 0 validates on
    # the test split instead (what PySlowFast and MMAction2 do for UCF101 and Kinetics).
    holdout: float = 0.1
    bn_recalibration_batches: int = 50
    checkpoint_every: int = 200


@dataclass
class TestConfig:
    """Multi-view testing: clips x crops views per video, softmax averaged."""

    clips: int = 10
    crops: int = 3
    batch_size: int = 8


@dataclass
class RuntimeConfig:
    """Where and how tensors are computed; none of it changes the method."""

    device: str = "auto"
    # fp32, or bf16/fp16 autocast (fp16 with a gradient scaler); auto: bf16 on CUDA
    # where supported, else fp16; on a CPU bf16 only if a short measurement at start
    # shows it faster than fp32 (docs/design.md, "Precision"). Resolved once per run.
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "fp32"
    channels_last: bool = True
    threads: int | None = None
    # Search: keep only each supernet transition's and mixed layer's input for the
    # backward pass and recompute the rest there; less memory, more time
    # (docs/design.md, "Memory"). Results are unchanged.
    activation_checkpointing: bool = False
    # Under torchrun on CUDA: BatchNorm statistics over the whole global batch
    # (SyncBatchNorm) instead of each rank's part (docs/design.md, "Distributed").
    sync_batchnorm: bool = False


@dataclass
class Config:
    """Everything a run needs; saved resolved into every run directory."""

    seed: int = 0
    # Clip shape C x T x H x W fed to the network (the paper: 3 x 16 x 224 x 224).
    input: tuple[int, int, int, int] = (3, 16, 224, 224)
    space: SpaceConfig = field(default_factory=SpaceConfig)
    data: DataConfig = field(default_factory=DataConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    test: TestConfig = field(default_factory=TestConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)

    def validate(self) -> None:
        _check_range(self)


# --------------------------------------------------------------------------- conversion


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        inner = " or ".join(_type_name(a) for a in args)
        return f"{inner} or null" if len(args) < len(typing.get_args(tp)) else inner
    if origin in (list, tuple):
        args = typing.get_args(tp)
        if origin is tuple and args and args[-1] is not Ellipsis:
            return f"a list of {len(args)} {_type_name(args[0])}s"
        return f"a list of {_type_name(args[0])}"
    if dataclasses.is_dataclass(tp):
        return f"a mapping ({tp.__name__})"
    return getattr(tp, "__name__", str(tp))


def _fail(key: str, expected: str, value: Any) -> typing.NoReturn:
    raise ConfigError(f"{key or '<root>'}: expected {expected}, got {value!r}")


def _coerce(value: Any, tp: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None:
            if type(None) in args:
                return None
            _fail(key, _type_name(tp), value)
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key)
            except ConfigError as err:
                errors.append(err)
        _fail(key, _type_name(tp), value)
    if origin is Literal:
        if value in typing.get_args(tp):
            return value
        _fail(key, _type_name(tp), value)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, Mapping):
            _fail(key, _type_name(tp), value)
        return from_dict(tp, value, key)
    if origin in (list, tuple):
        args = typing.get_args(tp)
        if isinstance(value, str) and origin is tuple and "x" in value:
            # Shapes may be written as 3x16x224x224.
            value = value.split("x")
        if not isinstance(value, Sequence) or isinstance(value, str):
            _fail(key, _type_name(tp), value)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                _fail(key, _type_name(tp), value)
            return tuple(_coerce(v, a, f"{key}.{i}") for i, (v, a) in enumerate(zip(value, args)))
        inner = args[0]
        items = [_coerce(v, inner, f"{key}.{i}") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if tp is bool:
        if isinstance(value, bool):
            return value
        _fail(key, "a boolean (true/false)", value)
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                pass
        _fail(key, "an integer", value)
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            # YAML 1.1 reads "1e-4" as a string; accept it as the number it means.
            try:
                return float(value)
            except ValueError:
                pass
        _fail(key, "a number", value)
    if tp is str:
        if isinstance(value, str):
            return value
        _fail(key, "a string", value)
    raise TypeError(f"unsupported config type {tp!r} at {key}")


def from_dict(cls: type, data: Mapping[str, Any], prefix: str = "") -> Any:
    """Build dataclass ``cls`` from ``data``, refusing unknown keys and wrong types."""
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    for key in data:
        if key not in names:
            where = f"{prefix}.{key}" if prefix else str(key)
            close = difflib.get_close_matches(str(key), names, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise ConfigError(f"unknown key '{where}'{hint} (valid keys: {', '.join(names)})")
    kwargs = {}
    for f in dataclasses.fields(cls):
        where = f"{prefix}.{f.name}" if prefix else f.name
        if f.name in data:
            kwargs[f.name] = _coerce(data[f.name], hints[f.name], where)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"missing key '{where}' ({_type_name(hints[f.name])})")
    return cls(**kwargs)


def parse_shape(text: str, key: str = "input") -> tuple[int, int, int, int]:
    """A clip shape written as ``3x16x224x224`` (or a list of four integers)."""
    return _coerce(text, tuple[int, int, int, int], key)


def to_dict(obj: Any) -> Any:
    """Plain (YAML/JSON-ready) form of a config dataclass: tuples become lists."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    return obj


# --------------------------------------------------------------------------- range checks


def _check_range(cfg: Config) -> None:
    def need(ok: bool, key: str, msg: str) -> None:
        if not ok:
            raise ConfigError(f"{key}: {msg}")

    need(
        all(v > 0 for v in cfg.input), "input", f"all of C x T x H x W must be > 0, got {cfg.input}"
    )
    need(cfg.input[0] == 3, "input", "the channel count must be 3 (RGB)")
    s = cfg.search
    need(s.epochs > 0, "search.epochs", "must be > 0")
    need(
        s.warmup_epochs is None or 0 <= s.warmup_epochs <= s.epochs,
        "search.warmup_epochs",
        "must be in [0, search.epochs], or null",
    )
    need(s.arch_lr is None or s.arch_lr > 0, "search.arch_lr", "must be > 0, or null")
    need(s.batch_size > 0, "search.batch_size", "must be > 0")
    need(s.w_lr_warmup_epochs >= 0, "search.w_lr_warmup_epochs", "must be >= 0")
    need(s.arch_eps > 0, "search.arch_eps", "must be > 0")
    need(s.cost_base > 1, "search.cost_base", "the log base k must be > 1")
    need(s.cost_lambda >= 0, "search.cost_lambda", "must be >= 0")
    need(s.budget_gmacs is None or s.budget_gmacs > 0, "search.budget_gmacs", "must be > 0")
    need(0 < s.budget_tolerance < 1, "search.budget_tolerance", "must be in (0, 1)")
    need(s.checkpoint_every > 0, "search.checkpoint_every", "must be > 0")
    need(
        s.residual_init is None or s.residual_init >= 0,
        "search.residual_init",
        "must be >= 0, or null",
    )
    need(0 < s.decided_threshold < 1, "search.decided_threshold", "must be in (0, 1)")
    t = cfg.train
    need(t.epochs > 0, "train.epochs", "must be > 0")
    need(t.batch_size > 0, "train.batch_size", "must be > 0")
    need(t.lr_warmup_epochs >= 0, "train.lr_warmup_epochs", "must be >= 0")
    need(0 <= t.dropout < 1, "train.dropout", "must be in [0, 1)")
    need(t.residual_init >= 0, "train.residual_init", "must be >= 0")
    need(0 <= t.holdout < 1, "train.holdout", "must be in [0, 1)")
    need(t.checkpoint_every > 0, "train.checkpoint_every", "must be > 0")
    d = cfg.data
    need(abs(sum(d.search_split) - 1) < 1e-6, "data.search_split", "fractions must sum to 1")
    need(all(f > 0 for f in d.search_split), "data.search_split", "fractions must be > 0")
    need(d.sampling_rate > 0, "data.sampling_rate", "must be > 0")
    need(d.num_workers >= 0, "data.num_workers", "must be >= 0")
    need(d.decode_threads is None or d.decode_threads >= 0, "data.decode_threads", "must be >= 0")
    need(d.ucf_split in (1, 2, 3), "data.ucf_split", "UCF101 has splits 1, 2 and 3")
    need(all(v > 0 for v in d.std), "data.std", "must be > 0")
    need(
        d.train_resize[0] >= cfg.input[2] and d.train_resize[1] >= cfg.input[3],
        "data.train_resize",
        f"{list(d.train_resize)} is smaller than the input crop {cfg.input[2]}x{cfg.input[3]}",
    )
    if d.short_side_jitter is not None:
        lo, hi = d.short_side_jitter
        need(
            min(cfg.input[2:]) <= lo <= hi,
            "data.short_side_jitter",
            "needs crop size <= min <= max",
        )
    need(d.test_short_side >= min(cfg.input[2:]), "data.test_short_side", "smaller than the crop")
    need(cfg.test.clips > 0, "test.clips", "must be > 0")
    need(cfg.test.crops in (1, 3), "test.crops", "must be 1 (centre) or 3")
    need(cfg.runtime.threads is None or cfg.runtime.threads > 0, "runtime.threads", "must be > 0")
    need(bool(s.dimensions), "search.dimensions", "search at least one of channels, ops, depth")
    need(
        len(set(s.dimensions)) == len(s.dimensions), "search.dimensions", "lists a dimension twice"
    )
    # What makes a search space valid (op names, widths, strides against the input) is
    # checked by vidnas.models.space, and the synthetic dataset's settings by
    # vidnas.data.synth, when they are built: this module imports no other.


# --------------------------------------------------------------------------- loading

PRESETS = ("paper", "cpu-small", "demo", "tiny")


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as err:
        raise ConfigError(f"cannot read config file {path}: {err.strerror}") from err
    except yaml.YAMLError as err:
        raise ConfigError(f"config file {path} is not valid YAML: {err}") from err
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping, not {type(data).__name__}")
    return data


def preset_path(name: str) -> Path:
    """The YAML file of a built-in preset."""
    return Path(str(resources.files("vidnas") / "presets" / f"{name}.yaml"))


def _layer(source: str | Path, seen: tuple[str, ...] = ()) -> dict[str, Any]:
    """The mapping that ``source`` (preset name or YAML path) lays over the defaults,
    with its ``base:`` chain merged underneath."""
    src = str(source)
    if src in seen:
        raise ConfigError(f"config 'base' chain loops: {' -> '.join((*seen, src))}")
    if src in PRESETS:
        data = _read_yaml(preset_path(src))
        here = None
    else:
        path = Path(src)
        if not path.exists():
            raise ConfigError(
                f"config '{src}' is neither a preset ({', '.join(PRESETS)}) nor an existing file"
            )
        data = _read_yaml(path)
        here = path.parent
    base = data.pop("base", None)
    if base is None:
        return data
    if not isinstance(base, str):
        raise ConfigError(f"base: expected a preset name or a path, got {base!r}")
    if base not in PRESETS and here is not None and not Path(base).is_absolute():
        base = str(here / base)
    return merge(_layer(base, (*seen, src)), data)


def merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge mappings; lists and scalars in ``over`` replace those in ``base``."""
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = merge(out[k], v)
        else:
            out[k] = v
    return out


def apply_override(data: dict[str, Any], assignment: str) -> None:
    """Apply one ``dotted.key=value`` to a nested mapping (list items by index)."""
    if "=" not in assignment:
        raise ConfigError(f"override '{assignment}' must look like key=value")
    key, raw = assignment.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError(f"override '{assignment}' has no key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as err:
        raise ConfigError(f"{key}: cannot parse value {raw!r}: {err}") from err
    parts = key.split(".")
    node: Any = data
    for i, part in enumerate(parts[:-1]):
        where = ".".join(parts[: i + 1])
        if isinstance(node, list):
            node = node[_index(part, node, where)]
        elif isinstance(node, dict):
            if part not in node or not isinstance(node[part], (dict, list)):
                node[part] = {}  # from_dict reports the unknown key by its full name
            node = node[part]
        else:
            raise ConfigError(f"override '{assignment}': '{where}' is not a section")
    last = parts[-1]
    if isinstance(node, list):
        node[_index(last, node, key)] = value
    else:
        node[last] = value


def _index(part: str, seq: list, where: str) -> int:
    if not part.isdigit() or int(part) >= len(seq):
        raise ConfigError(f"'{where}': expected a list index below {len(seq)}")
    return int(part)


# Renamed keys, so that a config file, run directory or checkpoint written before the
# rename still loads (with a warning that names the new key). ``search.channels``,
# ``search.ops`` and ``search.depth`` were booleans; ``search.ops`` read like
# ``space.ops`` (the op names), so they became one list, ``search.dimensions``.
_DIMENSIONS = ("channels", "ops", "depth")


# The order and cycle tasks were retired; every config saved while they existed holds
# their two settings at these defaults, which load as nothing. Other values meant one
# of those tasks, which no longer exists: refused, naming the key.
_RETIRED_SYNTH = {"period": 8, "event": 3}


def _upgrade(data: dict[str, Any]) -> dict[str, Any]:
    synth = data.get("data", {}).get("synth") if isinstance(data.get("data"), dict) else None
    if isinstance(synth, dict):
        for key, default in _RETIRED_SYNTH.items():
            if key in synth and synth.pop(key) != default:
                raise ConfigError(
                    f"data.synth.{key}: belonged to the retired order and cycle tasks; "
                    "the synthetic tasks are motion and echo"
                )
    search = data.get("search")
    if not isinstance(search, dict):
        return data
    for dim in _DIMENSIONS:
        if dim not in search:
            continue
        on = search.pop(dim)
        if not isinstance(on, bool):
            _fail(f"search.{dim}", "a boolean (true/false)", on)
        warnings.warn(
            f"config key 'search.{dim}' is deprecated; list the searched dimensions in "
            f"search.dimensions instead (e.g. search.dimensions=[channels,ops,depth])",
            FutureWarning,
            stacklevel=4,
        )
        current = search.get("dimensions", list(_DIMENSIONS))
        if not isinstance(current, list):
            _fail("search.dimensions", "a list of channels, ops, depth", current)
        chosen = {d for d in current if d != dim} | ({dim} if on else set())
        search["dimensions"] = [d for d in _DIMENSIONS if d in chosen]
    return data


def config_from_dict(data: Mapping[str, Any], validate: bool = True) -> Config:
    """A :class:`Config` from its plain (YAML/JSON) form, as saved in run directories
    and checkpoints; renamed keys are read with a warning."""
    cfg = from_dict(Config, _upgrade(copy.deepcopy(dict(data))))
    if validate:
        cfg.validate()
    return cfg


def load_config(
    source: str | Path | None = None, overrides: Sequence[str] = (), validate: bool = True
) -> Config:
    """The resolved :class:`Config` from a preset name or YAML path plus overrides."""
    data = to_dict(Config())
    if source is not None:
        data = merge(data, _upgrade(_layer(source)))
    for assignment in overrides:
        apply_override(data, assignment)
    return config_from_dict(data, validate)


def with_overrides(cfg: Config, *overrides: str) -> Config:
    """A copy of ``cfg`` with ``key=value`` overrides applied and validated; ``cfg`` is
    unchanged. The one way to make a variant of a config (another seed, another
    searched dimension)."""
    data = to_dict(cfg)
    for assignment in overrides:
        apply_override(data, assignment)
    return config_from_dict(data)


def dump_config(cfg: Config) -> str:
    """YAML text of a resolved config; ``load_config`` of it gives the same config."""
    return yaml.safe_dump(to_dict(cfg), sort_keys=False)
