"""The motion task (``data.synth.task: motion``, the default): classes that only
motion tells apart.

What a frame shows is drawn from one distribution for every class: a smooth
random background, six to ten discs or squares of random colour and size at
positions uniform over the frame. (Objects move on a torus, wrapping at the
edges; that keeps every object's position uniform at every frame, whatever
its motion, which bouncing off the edges would not.) A single frame therefore
carries no label information. Each object moves along its own random axis at
its own constant speed with a random phase, and its velocity follows its
class's *program*, a periodic sequence of steps ``+`` (forward), ``-`` (back)
and ``0`` (pause):

==========  ==========================  ============================================
class       one period                  told apart from the rest by
==========  ==========================  ============================================
Glide       ``+``                       no reversal, no pause (3 frames)
Shake       ``+-``                      reversal every frame (3 frames)
Stutter     ``+0``                      pause every other frame (3 frames)
Swing2      ``++--``                    reversals 2 apart (3 frames)
Swing4      ``++++----``                vs Swing3x5: needs 6 frames
Swing3x5    ``+3 -5 +5 -3`` (runs)      vs Swing4: needs 6 frames
Halt4       ``++++0000``                vs Halt2x6: needs 5 frames
Halt2x6     ``+2 06 +6 02``             vs Halt4: needs 5 frames
Swing7      ``+7 -7``                   vs Swing6x8: needs 9 frames
Swing6x8    ``+6 -8 +8 -6``             vs Swing7: needs 9 frames
==========  ==========================  ============================================

The pairs are built so that global average pooling over time cannot shortcut
them: both members have the same rate of every event (reversals or pauses per
frame, same mean speed, no drift in the swings) and their shortest run is
long enough that every window of up to ``shortest run + 2`` frames has the
same distribution in both. Only a window that holds two events shows their
spacing (3 and 5 against 4, or 6 and 8 against 7), so Swing7 and Swing6x8 need
9 frames of context: four stacked kernel-3 temporal convolutions, or two if one
has dilation 4. Yet no 16-frame window of one class can occur in another: a
training clip always shows its class.
``tests/data/test_synth.py`` checks the window statistics exactly and checks
on rendered videos that a per-frame model stays at chance while a clip model
does not.
"""

from __future__ import annotations

import math

import numpy as np

from vidnas.config import SynthConfig
from vidnas.data.synth.task import SynthTask, need
from vidnas.data.synth.video import frame_size, hsv, to_uint8

# name -> runs of (step, length); one period of the velocity program.
PROGRAMS: dict[str, tuple[tuple[int, int], ...]] = {
    "Glide": ((1, 1),),
    "Shake": ((1, 1), (-1, 1)),
    "Stutter": ((1, 1), (0, 1)),
    "Swing2": ((1, 2), (-1, 2)),
    "Swing4": ((1, 4), (-1, 4)),
    "Swing3x5": ((1, 3), (-1, 5), (1, 5), (-1, 3)),
    "Halt4": ((1, 4), (0, 4)),
    "Halt2x6": ((1, 2), (0, 6), (1, 6), (0, 2)),
    "Swing7": ((1, 7), (-1, 7)),
    "Swing6x8": ((1, 6), (-1, 8), (1, 8), (-1, 6)),
}
CLASS_NAMES = tuple(PROGRAMS)

# Sizes and speeds are for a frame 96 pixels wide and scale with the width. Many small
# objects rather than a few large ones: every object is one more sample of its class's
# motion in each clip, which is what makes 300 videos enough to learn from.
_REF_WIDTH = 96
_OBJECTS = (6, 10)
_RADIUS = (3.5, 6.0)
_SPEED = (2.5, 3.5)  # pixels per frame
_TEXTURE = 18.0  # standard deviation of the background texture, in 8-bit levels


def program_steps(name: str) -> np.ndarray:
    """One period of class ``name``'s velocity program, one step per frame."""
    return np.concatenate([np.full(n, step, dtype=np.int8) for step, n in PROGRAMS[name]])


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A smooth random texture in muted colours, float32 [H, W, 3]."""
    base = hsv(rng.random(), 0.15 + 0.3 * rng.random(), 0.25 + 0.3 * rng.random())
    grid = rng.normal(0.0, _TEXTURE, size=(4, 5, 3)).astype(np.float32)
    ys = np.linspace(0, grid.shape[0] - 1, h)
    xs = np.linspace(0, grid.shape[1] - 1, w)
    y0 = np.minimum(ys.astype(int), grid.shape[0] - 2)
    x0 = np.minimum(xs.astype(int), grid.shape[1] - 2)
    fy, fx = (ys - y0)[:, None, None], (xs - x0)[None, :, None]
    g = grid
    tex = (
        g[y0][:, x0] * (1 - fy) * (1 - fx)
        + g[y0 + 1][:, x0] * fy * (1 - fx)
        + g[y0][:, x0 + 1] * (1 - fy) * fx
        + g[y0 + 1][:, x0 + 1] * fy * fx
    )
    return np.clip(base + tex, 0, 255).astype(np.float32)


def render_video(
    name: str,
    frames: int,
    size: int,
    seed: int,
    stripes: float | None = None,
    radius_range: tuple[float, float] = _RADIUS,
) -> np.ndarray:
    """The frames of one video of class ``name``: uint8 [frames, H, W, 3]. With
    ``stripes`` (an angle in radians), every object is filled with light and dark
    stripes across that direction, :data:`STRIPE_PERIOD` pixels a pair at the
    reference width, carried with the object as it moves."""
    rng = np.random.default_rng(seed)
    h, w = frame_size(size)
    k = w / _REF_WIDTH
    steps = program_steps(name).astype(np.float64)
    video = np.broadcast_to(_background(rng, h, w), (frames, h, w, 3)).copy()
    f = np.arange(frames)[:, None, None]
    for _ in range(int(rng.integers(_OBJECTS[0], _OBJECTS[1] + 1))):
        radius = k * rng.uniform(*radius_range)
        square = bool(rng.integers(0, 2))
        colour = hsv(rng.random(), rng.uniform(0.6, 1.0), rng.uniform(0.75, 1.0))
        angle = rng.uniform(0, 2 * math.pi)
        speed = k * rng.uniform(*_SPEED)
        phase = int(rng.integers(0, len(steps)))
        start = rng.uniform(0, 1, size=2) * (h, w)
        # Position at frame t: start + speed * axis * (sum of the first t program steps).
        program = np.roll(steps, -phase)[np.arange(frames - 1) % len(steps)]
        walk = np.concatenate([[0.0], np.cumsum(program)])
        py = start[0] + speed * math.sin(angle) * walk
        px = start[1] + speed * math.cos(angle) * walk
        # Draw on the patch around the object, its pixel indices wrapped (a torus).
        half = min(math.ceil(radius) + 1, (min(h, w) - 1) // 2)
        offs = np.arange(-half, half + 1)
        cy, cx = np.floor(py).astype(int), np.floor(px).astype(int)
        dy = (cy[:, None] + offs + 0.5 - py[:, None])[:, :, None]  # [F, S, 1]
        dx = (cx[:, None] + offs + 0.5 - px[:, None])[:, None, :]  # [F, 1, S]
        if square:
            dist = np.maximum(np.abs(dx), np.abs(dy)) - radius
        else:
            dist = np.sqrt(dx * dx + dy * dy) - radius
        alpha = np.clip(0.5 - dist, 0.0, 1.0).astype(np.float32)[..., None]  # antialiased
        rows = ((cy[:, None] + offs) % h)[:, :, None]
        cols = ((cx[:, None] + offs) % w)[:, None, :]
        patch = video[f, rows, cols]
        fill = colour if stripes is None else colour * _stripes(dy, dx, stripes, k)[..., None]
        video[f, rows, cols] = patch * (1 - alpha) + fill * alpha
    return to_uint8(video)


# Light and dark stripes of equal width, a pair every STRIPE_PERIOD pixels at the
# reference width: fine enough that averaging over 8 x 8 pixels (two pairs) leaves
# each object about one flat shade whatever its stripes' direction.
STRIPE_PERIOD = 4.0
_STRIPE_SHADES = (1.0, 0.45)


def _stripes(dy: np.ndarray, dx: np.ndarray, angle: float, k: float) -> np.ndarray:
    """Brightness factor of each pixel (offsets ``dy``, ``dx`` from the object's
    centre) under stripes across direction ``angle``, float32 [F, S, S]."""
    across = dx * math.cos(angle) + dy * math.sin(angle)
    light = (np.floor(2 * across / (k * STRIPE_PERIOD)) % 2) == 0
    return np.where(light, *_STRIPE_SHADES).astype(np.float32)


def motion_task(name: str, summary: str, classes: tuple[str, ...] | None) -> SynthTask:
    """A task of motion classes: ``classes`` (names of :data:`PROGRAMS`), or with None
    the first ``data.synth.classes`` of them."""

    def class_names(synth: SynthConfig) -> tuple[str, ...]:
        return classes if classes is not None else CLASS_NAMES[: synth.classes]

    def check(synth: SynthConfig) -> None:
        if classes is None:
            need(
                2 <= synth.classes <= len(CLASS_NAMES),
                "classes",
                f"the motion task has 2 to {len(CLASS_NAMES)} classes",
            )
        else:
            need(synth.classes == len(classes), "classes", f"the {name} task has {len(classes)}")

    return SynthTask(
        name=name,
        summary=summary,
        # The motion task's marker predates the task key: its datasets stay valid.
        keys=("classes", "per_class", "frames", "size", "fps", "seed")
        if classes is None
        else ("task", "classes", "per_class", "frames", "size", "fps", "seed"),
        class_names=class_names,
        render=lambda label, cls, synth, seed: render_video(cls, synth.frames, synth.size, seed),
        describe=lambda label, cls, synth: "".join(
            "+" if s > 0 else "-" if s < 0 else "0" for s in program_steps(cls)
        ),
        check=check,
    )


TASK = motion_task(
    "motion",
    "how small objects move (the first data.synth.classes of 10; 3-9 frames of context)",
    None,
)
