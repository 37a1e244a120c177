"""The built-in synthetic datasets: one module per task (``motion``, ``echo``),
each a :class:`~vidnas.data.synth.task.SynthTask`, written to disk in UCF101's
layout by :mod:`~vidnas.data.synth.layout` (``vidnas data synth --task NAME``;
docs/design.md, "Data")."""

from vidnas.data.synth.layout import (
    TASKS,
    check_synth_config,
    class_names,
    ensure_synthetic,
    write_synthetic,
)
from vidnas.data.synth.motion import CLASS_NAMES
from vidnas.data.synth.video import frame_size

__all__ = [
    "CLASS_NAMES",
    "TASKS",
    "check_synth_config",
    "class_names",
    "ensure_synthetic",
    "frame_size",
    "write_synthetic",
]
