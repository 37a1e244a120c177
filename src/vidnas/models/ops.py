"""The building blocks of every vidnas network, and the names of the stack-layer ops
(docs/design.md, "Blocks").

All convolutions factorise space and time as R(2+1)D does: a (1,3,3) spatial
conv and a (3,1,1) temporal conv. The stack-layer op ``dil<d>`` dilates the
temporal conv by d, so a layer sees 2d+1 frames without dropping frames;
``skip`` is the identity, which is how depth is searched. Convs have no bias
because BatchNorm follows each one; :mod:`vidnas.models.cost` counts exactly
these layers.

The paper calls the layer that changes a stage's width its "head layer"; here
it is :class:`Transition`, because "head" usually means the classifier.
"""

from __future__ import annotations

import re
from typing import Any

import torch
from torch import nn

SKIP = "skip"
_DIL = re.compile(r"^dil([1-9][0-9]*)$")


def op_dilation(name: str) -> int | None:
    """Temporal dilation of a conv op (``dil4`` -> 4), ``None`` for ``skip``."""
    if name == SKIP:
        return None
    m = _DIL.match(name)
    if m is None:
        raise ValueError(f"unknown op {name!r}: ops are 'skip' or 'dil<d>' with d >= 1 (e.g. dil2)")
    return int(m.group(1))


def is_conv_op(name: str) -> bool:
    return op_dilation(name) is not None


def spatial_conv(c_in: int, c_out: int, stride: int = 1) -> nn.Conv3d:
    return nn.Conv3d(
        c_in, c_out, (1, 3, 3), stride=(1, stride, stride), padding=(0, 1, 1), bias=False
    )


def temporal_conv(c_in: int, c_out: int, dilation: int = 1) -> nn.Conv3d:
    return nn.Conv3d(
        c_in, c_out, (3, 1, 1), padding=(dilation, 0, 0), dilation=(dilation, 1, 1), bias=False
    )


class Stem(nn.Sequential):
    """Conv (1,3,3) 3 -> width with spatial stride, BN, ReLU."""

    def __init__(self, width: int, stride: int = 2, in_channels: int = 3) -> None:
        super().__init__(
            spatial_conv(in_channels, width, stride), nn.BatchNorm3d(width), nn.ReLU(inplace=True)
        )


class Transition(nn.Sequential):
    """The paper's head layer: changes the width and downsamples. Spatial conv
    (stride s), BN, ReLU, temporal conv (d = 1), BN, ReLU."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__(
            spatial_conv(c_in, c_out, stride),
            nn.BatchNorm3d(c_out),
            nn.ReLU(inplace=True),
            temporal_conv(c_out, c_out, 1),
            nn.BatchNorm3d(c_out),
            nn.ReLU(inplace=True),
        )


class DilatedBlock(nn.Module):
    """The basic operation: ``y = ReLU(x + BN(Conv_t,d(ReLU(BN(Conv_s(x))))))``.

    With dilation 1 this is the R(2+1)D residual block (without its mid-width
    expansion: C -> C throughout, docs/design.md "Blocks").
    """

    def __init__(self, width: int, dilation: int) -> None:
        super().__init__()
        self.dilation = dilation
        self.conv_s = spatial_conv(width, width)
        self.bn_s = nn.BatchNorm3d(width)
        self.conv_t = temporal_conv(width, width, dilation)
        self.bn_t = nn.BatchNorm3d(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.bn_s(self.conv_s(x)))
        return torch.relu(x + self.bn_t(self.conv_t(y)))


class Classifier(nn.Module):
    """Global average pool over T x H x W, dropout, linear."""

    def __init__(self, width: int, num_classes: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(x.mean(dim=(2, 3, 4))))


def make_op(name: str, width: int) -> nn.Module:
    """A stack-layer op by name: ``dil<d>`` or ``skip`` (identity)."""
    d = op_dilation(name)
    return nn.Identity() if d is None else DilatedBlock(width, d)


def init_weights(module: nn.Module, residual_scale: float = 0.0) -> None:
    """He initialisation for convs, unit BN, small linear (the torchvision video
    ResNet recipe), and a zero scale on the last BN of every residual block.

    The zero scale makes each block start as the identity (Goyal et al. 2017;
    PySlowFast's ``ZERO_INIT_FINAL_BN``, torchvision's ``zero_init_residual``), so
    a path starts as shallow as its transitions and grows into its depth. Without
    it a path of the ``cpu-small`` space (26 blocks) stayed at chance on the
    synthetic dataset for 600 SGD steps; with it the same path learned in 300
    (docs/results.md, "Initialisation").
    """
    for m in module.modules():
        if isinstance(m, nn.Conv3d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm3d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            nn.init.zeros_(m.bias)
    for m in module.modules():  # a second pass: the first visits a block's BNs after it
        if isinstance(m, DilatedBlock):
            nn.init.constant_(m.bn_t.weight, residual_scale)


def rename_legacy_keys(state_dict: dict[str, Any]) -> None:
    """Rename, in place, the state-dict keys of checkpoints written before ``Head``
    became :class:`Transition` (``.head.`` -> ``.transition.``, ``.heads.`` ->
    ``.transitions.``), so that older checkpoints still load."""
    for key in list(state_dict):
        new = key.replace(".heads.", ".transitions.").replace(".head.", ".transition.")
        if new != key:
            state_dict[new] = state_dict.pop(key)
