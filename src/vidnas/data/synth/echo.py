"""The echo task (``data.synth.task: echo``): a network needs exactly ``lag + 1``
frames of temporal context, and nothing else.

Every frame is one whole-frame colour of five; the first ``lag`` frames are
drawn uniformly and independently, and from then on frame t shows colour
``(colour of frame t - lag + step) mod 5``; the class is the step, 1 to 4
(StepOne ... StepFour). Any ``lag`` consecutive frames are a one-to-one image of
``lag`` independent uniform colours, so every window of up to ``lag`` frames has
the same distribution in every class, and any window of ``lag + 1`` frames
names the class. Every frame takes part in a pair, so a 16-frame clip holds
``16 - lag`` pairs to learn from, and the stream is stationary, so a clip's ends
(where zero padding starts) say nothing. At the default lag 8 (9 frames: a
``dil4`` layer spans exactly that) networks with ``dil4`` layers early learn it
and those with only ``dil1`` layers or none stay at chance (docs/results.md,
"The echo task").
"""

from __future__ import annotations

import numpy as np

from vidnas.config import SynthConfig
from vidnas.data.synth.task import SynthTask, need
from vidnas.data.synth.video import GREY, HUES, frame_size, hsv, to_uint8

CLASSES = ("StepOne", "StepTwo", "StepThree", "StepFour")


def echo_stream(step: int, first: np.ndarray, frames: int) -> np.ndarray:
    """The colour index (0-4) at each frame: ``first`` (the first ``lag`` frames,
    ``lag = len(first)``), then each frame ``step`` colours on from the frame ``lag``
    before it."""
    lag = len(first)
    s = np.empty(frames, dtype=np.int64)
    s[: min(lag, frames)] = first[:frames]
    for t in range(lag, frames):
        s[t] = (s[t - lag] + step) % len(HUES)
    return s


def render_echo_video(label: int, frames: int, size: int, lag: int, seed: int) -> np.ndarray:
    """The frames of one video of class ``label`` (step ``label + 1``): uint8
    [frames, H, W, 3], each a whole-frame tint of the five colours on grey."""
    rng = np.random.default_rng(seed)
    h, w = frame_size(size)
    first = rng.integers(0, len(HUES), size=lag)
    tints = np.stack([0.4 * GREY + 0.6 * hsv(hue, 0.9, 1.0) for hue in HUES])
    colours = tints[echo_stream(label + 1, first, frames)]  # [frames, 3]
    return to_uint8(np.broadcast_to(colours[:, None, None, :], (frames, h, w, 3)))


def _check(synth: SynthConfig) -> None:
    need(synth.classes == 4, "classes", "the echo task has 4 classes")
    need(synth.lag >= 1, "lag", "must be >= 1 frame")
    need(
        synth.frames >= synth.lag + 1,
        "frames",
        f"must be >= lag + 1 ({synth.lag + 1}) so that a video shows its step",
    )


TASK = SynthTask(
    name="echo",
    summary="which colour of five each frame's comes back as, data.synth.lag frames later "
    "(lag + 1 frames of context)",
    keys=("task", "classes", "per_class", "frames", "size", "fps", "seed", "lag"),
    class_names=lambda synth: CLASSES,
    render=lambda label, name, synth, seed: render_echo_video(
        label, synth.frames, synth.size, synth.lag, seed
    ),
    describe=lambda label, name, synth: (
        f"each frame's colour comes back {label + 1} of 5 on, {synth.lag} frames later"
    ),
    check=_check,
)
