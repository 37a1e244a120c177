"""The detail task (``data.synth.task: detail``): fine spatial detail, no motion
to speak of and no long temporal context.

The motion task's scene (:mod:`vidnas.data.synth.motion`: a textured background
and six to ten objects at uniform positions), every object gliding along its own
random axis, and every object filled with light and dark stripes, a pair every
4 pixels at the reference width of 96. The class is the stripes' direction:
across 0, 45, 90 or 135 degrees. One frame at full resolution shows it; averaged
over 8 x 8 pixels each object is about one flat shade, the same in every class,
and every class moves alike (``tests/data/test_synth.py`` checks both). Of the
suite's tasks, the one decided by spatial detail at short range: a network needs
its early layers wide enough and its input resolved enough to see 2-pixel
stripes, and no temporal depth.
"""

from __future__ import annotations

import math

from vidnas.data.synth.motion import render_video
from vidnas.data.synth.task import SynthTask, need

CLASSES = ("Stripes0", "Stripes45", "Stripes90", "Stripes135")
ANGLES = {name: math.radians(int(name.removeprefix("Stripes"))) for name in CLASSES}
# Larger objects than the motion task's 3.5-6 pixels, so that each holds a few pairs
# of stripes.
RADIUS = (6.0, 9.0)

TASK = SynthTask(
    name="detail",
    summary="striped objects whose stripes' direction is the class (4 classes): spatial detail",
    keys=("task", "classes", "per_class", "frames", "size", "fps", "seed"),
    class_names=lambda synth: CLASSES,
    render=lambda label, cls, synth, seed: render_video(
        "Glide", synth.frames, synth.size, seed, stripes=ANGLES[cls], radius_range=RADIUS
    ),
    describe=lambda label, cls, synth: f"stripes across {ANGLES[cls] * 180 / math.pi:.0f} degrees",
    check=lambda synth: need(synth.classes == len(CLASSES), "classes", "the detail task has 4"),
)
