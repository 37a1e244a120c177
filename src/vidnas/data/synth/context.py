"""The context task (``data.synth.task: context``): spatial detail and a mid-range
temporal context.

Four of the motion task's classes (:mod:`vidnas.data.synth.motion`), two pairs
built so that short windows cannot tell a pair apart: Swing4 (``++++----``)
against Swing3x5 (runs ``+3 -5 +5 -3``), which need 6 frames, and Halt4
(``++++0000``) against Halt2x6 (runs ``+2 06 +6 02``), which need 5. Within a pair
every window shorter than that has the same distribution, so a network with less
context can at best tell a Swing from a Halt (half of the task); the same small
objects as the detail task carry the motion. Of the suite's tasks, the one that
rewards a mid-range context: a ``dil2`` layer, or two or three stacked ``dil1``
layers, where the echo task needs a ``dil4``.
"""

from __future__ import annotations

from vidnas.data.synth.motion import motion_task

CLASSES = ("Swing4", "Swing3x5", "Halt4", "Halt2x6")

TASK = motion_task(
    "context",
    "small objects whose motion 5-6 frames tell apart (4 classes): mid-range context",
    CLASSES,
)
