"""The standalone network that an architecture spec describes.

``build_network(spec)`` is the only way a derived or built-in architecture
becomes a module; training, testing, prediction and export all go through it.
The module layout (``stem``, ``stages[i].transition``, ``stages[i].blocks[k]``,
``classifier``) mirrors the supernet's, so a derived network can inherit the
supernet's weights of its path by name.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from vidnas.models.ops import (
    Classifier,
    Stem,
    Transition,
    init_weights,
    make_op,
    rename_legacy_keys,
)
from vidnas.models.spec import ArchSpec


class NetworkStage(nn.Module):
    """One stage: a transition that sets width and resolution, then the kept stack layers."""

    def __init__(self, c_in: int, width: int, stride: int, ops: tuple[str, ...]) -> None:
        super().__init__()
        self.transition = Transition(c_in, width, stride)
        self.blocks = nn.Sequential(*(make_op(op, width) for op in ops))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.transition(x))


class VidNet(nn.Module):
    """A 3D ResNet of factorised (2+1)D blocks with temporally dilated stack layers."""

    def __init__(self, spec: ArchSpec, dropout: float = 0.0, residual_init: float = 0.0) -> None:
        super().__init__()
        self.spec = spec
        self.stem = Stem(spec.stem_width, spec.stem_stride, in_channels=spec.input[0])
        stages = []
        c_in = spec.stem_width
        for st in spec.stages:
            stages.append(NetworkStage(c_in, st.width, st.stride, st.ops))
            c_in = st.width
        self.stages = nn.ModuleList(stages)
        self.classifier = Classifier(c_in, spec.num_classes, dropout)
        init_weights(self, residual_init)
        self.register_load_state_dict_pre_hook(_legacy_keys)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for stage in self.stages:
            x = stage(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: clips of shape (N, 3, T, H, W), normalised; returns logits (N, classes)."""
        return self.classifier(self.features(x))


def build_network(spec: ArchSpec, dropout: float = 0.0, residual_init: float = 0.0) -> VidNet:
    """The network of ``spec`` with freshly initialised weights; ``residual_init``: the
    starting scale of every block's last BatchNorm (:func:`~vidnas.models.ops.init_weights`)."""
    return VidNet(spec, dropout, residual_init)


def _legacy_keys(module: nn.Module, state_dict: dict[str, Any], *args: Any) -> None:
    rename_legacy_keys(state_dict)
