"""A trained network as it travels: the self-describing checkpoint.

A ``train`` checkpoint carries everything needed to use the network without
its run directory: the architecture spec, the class names, the input clip
shape, the normalisation, the config it was trained with, its metrics and
its weights; a resumable one also carries the optimizer and loop state. It
holds only tensors and plain data and is read with ``weights_only=True``
(:mod:`vidnas.engine.checkpoint`). A file that is not such a checkpoint, or whose
weights do not fit its own spec, is refused with a message that says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vidnas.config import Config, config_from_dict, to_dict
from vidnas.engine.checkpoint import load_checkpoint
from vidnas.errors import CheckpointError, ConfigError, SpecError
from vidnas.models.network import VidNet, build_network
from vidnas.models.spec import ArchSpec

KIND = "train"


@dataclass
class TrainedModel:
    """A network ready for inference (eval mode), with what it needs to read videos."""

    net: VidNet
    spec: ArchSpec
    classes: list[str]
    config: Config
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    metrics: dict[str, Any]
    path: Path

    @property
    def input(self) -> tuple[int, int, int, int]:
        return self.spec.input


def model_payload(
    net: VidNet, classes: list[str], cfg: Config, metrics: Mapping[str, Any]
) -> dict[str, Any]:
    """The self-describing part of a train checkpoint."""
    return {
        "arch": net.spec.to_dict(),
        "classes": list(classes),
        "input": list(net.spec.input),
        "normalize": {"mean": list(cfg.data.mean), "std": list(cfg.data.std)},
        "config": to_dict(cfg),
        "metrics": dict(metrics),
        "model": {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()},
    }


def load_trained(path: str | Path, state: dict[str, Any] | None = None) -> TrainedModel:
    """Load a train checkpoint into an eval-mode network on the CPU."""
    path = Path(path)
    state = state if state is not None else load_checkpoint(path, KIND)
    try:
        spec = ArchSpec.from_dict(state["arch"])
        classes = [str(c) for c in state["classes"]]
        cfg = config_from_dict(state["config"], validate=False)
        norm = state["normalize"]
        mean, std = tuple(norm["mean"]), tuple(norm["std"])
        weights = state["model"]
    except (KeyError, TypeError, SpecError, ConfigError) as err:
        raise CheckpointError(f"{path}: a malformed vidnas train checkpoint ({err})") from None
    if len(classes) != spec.num_classes:
        raise CheckpointError(
            f"{path}: {len(classes)} class names for a {spec.num_classes}-class network"
        )
    net = build_network(spec)
    try:
        net.load_state_dict(weights)
    except RuntimeError as err:
        first = str(err).splitlines()[0]
        raise CheckpointError(
            f"{path}: its weights do not fit its architecture ({first})"
        ) from None
    net.eval()
    return TrainedModel(net, spec, classes, cfg, mean, std, dict(state.get("metrics", {})), path)
