"""The detail task (``data.synth.task: detail``): spatial detail at a short
temporal range.

Four of the motion task's classes (:mod:`vidnas.data.synth.motion`): Glide
(``+``), Shake (``+-``), Stutter (``+0``) and Swing2 (``++--``), which any 3
frames tell apart. What a network must resolve is the objects themselves: six to
ten discs and squares a few pixels across on a textured background, each moving
2.5-3.5 pixels a frame at the reference width of 96, their positions and colours
uniform whatever the class. Averaged over a frame or over the clip the classes
look alike (``tests/data/test_synth.py``); temporal context beyond 3 frames adds
nothing. Of the suite's tasks, the one decided by spatial detail at short range.
"""

from __future__ import annotations

from vidnas.data.synth.motion import motion_task

CLASSES = ("Glide", "Shake", "Stutter", "Swing2")

TASK = motion_task(
    "detail",
    "small moving objects told apart by 3 frames of motion (4 classes): spatial detail",
    CLASSES,
)
