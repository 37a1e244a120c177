"""What a synthetic task is: the one interface the dataset writer
(:mod:`vidnas.data.synth.layout`) needs of it. Each task is a module of its own
with one :class:`SynthTask`; :data:`vidnas.data.synth.layout.TASKS` lists them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from vidnas.config import SynthConfig
from vidnas.errors import ConfigError


@dataclass(frozen=True)
class SynthTask:
    """One synthetic task: its classes, how one video of a class is drawn, and which
    ``data.synth`` settings it reads (its dataset marker records those, so a change
    of a setting another task reads leaves its datasets valid)."""

    name: str
    summary: str  # one line, for ``vidnas data synth --help``
    keys: tuple[str, ...]
    class_names: Callable[[SynthConfig], tuple[str, ...]]
    # (label, class name, settings, seed) -> uint8 [frames, H, W, 3]
    render: Callable[[int, str, SynthConfig, int], np.ndarray]
    describe: Callable[[int, str, SynthConfig], str]  # one class, for the marker
    check: Callable[[SynthConfig], None]  # raises ConfigError naming data.synth.KEY


def need(ok: bool, key: str, msg: str) -> None:
    """Refuse a setting, naming its ``data.synth`` key."""
    if not ok:
        raise ConfigError(f"data.synth.{key}: {msg}")
