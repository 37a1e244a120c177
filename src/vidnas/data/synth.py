"""The built-in synthetic action dataset: classes that only motion tells apart.

Written as real video files in the UCF101 layout (``ucfTrainTestlist/`` with
``classInd.txt`` and three train/test splits, ``UCF-101/<Class>/v_<Class>_gXX_cYY.avi``,
MPEG-4 Part 2 in AVI as UCF101 ships), so it exercises the same reading path
as the real dataset.

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

The second task, ``order`` (``data.synth.task``), is built to need a chosen
amount of temporal context and nothing else. On a plain grey frame (the same
for every video, so that no video can be told by its background), the top and
the bottom half of the frame each flash one of four colours for ``event``
frames every ``period`` frames, the colours cycling forward (red, green, blue,
orange) or backward, from a random phase; the class is the pair of directions (FwdFwd, FwdBack,
BackFwd, BackBack). Every window of up to ``period - event + 1`` frames shows at
most one flash per half, whose colour is uniform whatever the class, so only a
network that spans ``period - event + 2`` frames sees an ordered pair. The phase
is uniform, so a clip's ends (where zero padding starts) say nothing. With the
default period 8 and event 3 that is 7 frames (the stage transitions alone span
13 in theory). How much architecture matters on it depends on the clip size and
the training budget (docs/results.md, "The order task").

The third task, ``cycle``, asks for the same context with one bit less to
learn. The whole frame flashes for ``event`` frames every ``period`` frames,
and flash n shows colour ``(start + step * n) mod 5`` of five (red, yellow,
green, blue, magenta), from a random start colour and phase; the class is the
step, 1 to 4 (StepOne ... StepFour; 3 and 4 are 2 and 1 backward). A single
flash's colour is uniform whatever the class, and any two successive flashes
name it, so again exactly ``period - event + 2`` frames are needed. It exists
because the order task's two halves are two separate things to learn, and
through the pipeline a network learned one half's direction and then sat at
half the task (train accuracy 0.5, loss ln 2) for the rest of a demo-sized
budget. At 7 frames every network of the demo's space learns it, heads-only
included; at 9 or more none did in that budget (docs/results.md, "Why the
demo's network retrained to chance").

The fourth task, ``echo``, is the benchmark where architecture decides
(issue 12). Every frame is one whole-frame colour of five; the first ``lag``
frames are drawn uniformly and independently, and from then on frame t shows
colour ``(colour of frame t - lag + step) mod 5``; the class is the step, 1 to
4 (StepOne ... StepFour). Any ``lag`` consecutive frames are a one-to-one
image of ``lag`` independent uniform colours, so every window of up to ``lag``
frames has the same distribution in every class, and any window of ``lag + 1``
frames names the class: a network needs exactly ``lag + 1`` frames of temporal
context. Unlike the cycle task's flashes with dark frames between them, every
frame takes part in a pair, so a 16-frame clip holds ``16 - lag`` pairs to learn
from, and the stream is stationary, so a clip's ends (where zero padding starts)
say nothing. At the default lag 8 (9 frames: a ``dil4`` layer spans exactly
that), within the demo's budget, networks with ``dil4`` layers early learn it,
those with one ``dil4`` layer learn most of it, and those with only ``dil1``
layers or none stay at chance (docs/results.md, "The echo task").

Every video is a pure function of ``(seed, class, group, clip)``; the same
settings give byte-identical files. Groups are only names here (UCF101's
groups share actor and scene; these share nothing, so the search split, which
ignores groups, leaks nothing), and split k tests on the k-th run of about 28%
of the groups, as UCF101's splits do.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path

import av
import numpy as np

from vidnas.config import SynthConfig
from vidnas.data.sampling import derive_seed
from vidnas.errors import ConfigError, DataError

log = logging.getLogger("vidnas.data")

FORMAT = "vidnas-synth/1"
MARKER = "synth.json"
LIST_DIR = "ucfTrainTestlist"
VIDEO_DIR = "UCF-101"

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
# The order task: (top half's direction, bottom half's direction).
ORDER_CLASSES = ("FwdFwd", "FwdBack", "BackFwd", "BackBack")
_ORDER_HUES = (0.0, 0.33, 0.6, 0.12)  # red, green, blue, orange
_ORDER_GREY = 90.0
# The cycle task: how many colours of five the flashes advance by, 1 to 4.
CYCLE_CLASSES = ("StepOne", "StepTwo", "StepThree", "StepFour")
_CYCLE_HUES = (0.0, 0.15, 0.35, 0.6, 0.83)  # red, yellow, green, blue, magenta


def class_names(synth: SynthConfig) -> tuple[str, ...]:
    """The classes of the dataset ``synth`` describes, in label order."""
    if synth.task == "order":
        return ORDER_CLASSES
    if synth.task in ("cycle", "echo"):
        return CYCLE_CLASSES
    return CLASS_NAMES[: synth.classes]


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


def frame_size(size: int) -> tuple[int, int]:
    """(H, W) of the videos: ``size`` wide, 4:3 like UCF101's 320x240, both even."""
    w = size - size % 2
    h = round(w * 3 / 4)
    return h - h % 2, w


# --------------------------------------------------------------------------- rendering


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    i = int(h * 6) % 6
    f = h * 6 - math.floor(h * 6)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    rgb = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i]
    return np.array(rgb, dtype=np.float32) * 255


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A smooth random texture in muted colours, float32 [H, W, 3]."""
    base = _hsv(rng.random(), 0.15 + 0.3 * rng.random(), 0.25 + 0.3 * rng.random())
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


def render_video(name: str, frames: int, size: int, seed: int) -> np.ndarray:
    """The frames of one video of class ``name``: uint8 [frames, H, W, 3]."""
    rng = np.random.default_rng(seed)
    h, w = frame_size(size)
    k = w / _REF_WIDTH
    steps = program_steps(name).astype(np.float64)
    video = np.broadcast_to(_background(rng, h, w), (frames, h, w, 3)).copy()
    f = np.arange(frames)[:, None, None]
    for _ in range(int(rng.integers(_OBJECTS[0], _OBJECTS[1] + 1))):
        radius = k * rng.uniform(*_RADIUS)
        square = bool(rng.integers(0, 2))
        colour = _hsv(rng.random(), rng.uniform(0.6, 1.0), rng.uniform(0.75, 1.0))
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
        video[f, rows, cols] = patch * (1 - alpha) + colour * alpha
    return np.clip(np.rint(video), 0, 255).astype(np.uint8)


def order_stream(backward: bool, phase: int, frames: int, period: int, event: int) -> np.ndarray:
    """One half's flashes in the order task: the colour index (0-3) shown at each
    frame, -1 where there is no flash."""
    order = (0, 3, 2, 1) if backward else (0, 1, 2, 3)
    t = np.arange(frames) + phase
    colour = np.array(order)[(t // period) % 4]
    return np.where(t % period < event, colour, -1)


def render_order_video(
    label: int, frames: int, size: int, period: int, event: int, seed: int
) -> np.ndarray:
    """The frames of one video of order-task class ``label``: uint8 [frames, H, W, 3]."""
    rng = np.random.default_rng(seed)
    h, w = frame_size(size)
    # One plain grey for every video: with a background of its own, each video is
    # recognisable by it and a supernet memorises the training videos instead of
    # learning the order (measured: train accuracy 0.95, held-out 0.27).
    video = np.full((frames, h, w, 3), _ORDER_GREY, dtype=np.float32)
    for half, backward in enumerate((label // 2, label % 2)):
        phase = int(rng.integers(0, 4 * period))  # uniform over a whole colour cycle
        rows = slice(half * h // 2, (half + 1) * h // 2)
        for t, c in enumerate(order_stream(bool(backward), phase, frames, period, event)):
            if c >= 0:
                colour = _hsv(_ORDER_HUES[c], 0.9, 1.0)
                video[t, rows] = 0.4 * video[t, rows] + 0.6 * colour
    return np.clip(np.rint(video), 0, 255).astype(np.uint8)


def cycle_stream(
    step: int, start: int, phase: int, frames: int, period: int, event: int
) -> np.ndarray:
    """The cycle task's flashes: the colour index (0-4) shown at each frame, -1
    where there is none. Flash n shows colour ``start + step * n`` (mod 5)."""
    t = np.arange(frames) + phase
    colour = (start + step * (t // period)) % len(_CYCLE_HUES)
    return np.where(t % period < event, colour, -1)


def render_cycle_video(
    label: int, frames: int, size: int, period: int, event: int, seed: int
) -> np.ndarray:
    """The frames of one video of cycle-task class ``label`` (step ``label + 1``):
    uint8 [frames, H, W, 3], on the order task's plain grey."""
    rng = np.random.default_rng(seed)
    h, w = frame_size(size)
    start = int(rng.integers(0, len(_CYCLE_HUES)))
    phase = int(rng.integers(0, period))
    video = np.full((frames, h, w, 3), _ORDER_GREY, dtype=np.float32)
    for t, c in enumerate(cycle_stream(label + 1, start, phase, frames, period, event)):
        if c >= 0:
            video[t] = 0.4 * video[t] + 0.6 * _hsv(_CYCLE_HUES[c], 0.9, 1.0)
    return np.clip(np.rint(video), 0, 255).astype(np.uint8)


def echo_stream(step: int, first: np.ndarray, frames: int) -> np.ndarray:
    """The echo task's colour index (0-4) at each frame: ``first`` (the first ``lag``
    frames, ``lag = len(first)``), then each frame ``step`` colours on from the frame
    ``lag`` before it."""
    lag = len(first)
    s = np.empty(frames, dtype=np.int64)
    s[: min(lag, frames)] = first[:frames]
    for t in range(lag, frames):
        s[t] = (s[t - lag] + step) % len(_CYCLE_HUES)
    return s


def render_echo_video(label: int, frames: int, size: int, lag: int, seed: int) -> np.ndarray:
    """The frames of one video of echo-task class ``label`` (step ``label + 1``):
    uint8 [frames, H, W, 3], each a whole-frame tint of the cycle task's colours."""
    rng = np.random.default_rng(seed)
    h, w = frame_size(size)
    first = rng.integers(0, len(_CYCLE_HUES), size=lag)
    tints = np.stack([0.4 * _ORDER_GREY + 0.6 * _hsv(hue, 0.9, 1.0) for hue in _CYCLE_HUES])
    colours = tints[echo_stream(label + 1, first, frames)]  # [frames, 3]
    video = np.broadcast_to(colours[:, None, None, :], (frames, h, w, 3))
    return np.clip(np.rint(video), 0, 255).astype(np.uint8)


def encode_avi(path: Path, video: np.ndarray, fps: int) -> None:
    """MPEG-4 Part 2 in AVI (UCF101's codec) at fixed quantiser 2: near lossless,
    decodable by anything, and byte-deterministic on one thread.

    Every frame is a key frame. With motion-compensated frames, how well an
    object is coded depends on how it moved (a paused object sharpens over
    successive P-frames), which would let a single frame hint at its class.
    """
    with av.open(str(path), "w", format="avi") as c:
        s = c.add_stream("mpeg4", rate=fps)
        s.width, s.height = video.shape[2], video.shape[1]
        s.pix_fmt = "yuv420p"
        s.thread_count = 1
        s.codec_context.gop_size = 1  # intra only: see the docstring
        s.codec_context.qscale = True  # constant quantiser: frames get qmin (2)
        s.codec_context.global_quality = 2 * 118  # FF_QP2LAMBDA * 2
        for frame in video:
            for packet in s.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                c.mux(packet)
        for packet in s.encode():
            c.mux(packet)


# --------------------------------------------------------------------------- layout


def groups_of(per_class: int) -> list[int]:
    """Clips per group for one class: about 4 per group, 4 to 25 groups."""
    g = min(per_class, max(4, min(25, math.ceil(per_class / 4))))
    return [per_class // g + (1 if i < per_class % g else 0) for i in range(g)]


def split_test_groups(n_groups: int, split: int) -> set[int]:
    """1-based groups tested in ``split`` (1..3): the split-th run of ~28% of them."""
    n = max(1, round(n_groups * 7 / 25))
    return {((split - 1) * n + j) % n_groups + 1 for j in range(n)}


def _settings(synth: SynthConfig) -> dict:
    settings = asdict(synth)
    # Each marker holds only the settings its task reads. The motion task's predates
    # the order task and the others' predate the echo task's lag: they stay
    # byte-identical, so datasets written before still match their config.
    if synth.task == "motion":
        for key in ("task", "period", "event"):
            settings.pop(key)
    if synth.task == "echo":
        for key in ("period", "event"):
            settings.pop(key)
    else:
        settings.pop("lag")
    if synth.task == "order":
        settings["background"] = "plain"  # order datasets before this had textured ones
    return settings


def write_synthetic(out: Path, synth: SynthConfig) -> Path:
    """Generate the dataset at ``out`` (a new or empty folder) and return ``out``.

    Writes into a temporary sibling folder and renames it into place, so a killed
    generation never leaves half a dataset at ``out``. If ``out`` already holds the
    same dataset this does nothing.
    """
    out = Path(out)
    check_synth_config(synth)
    if _existing(out, synth):
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        _generate(tmp, synth)
        try:
            os.rename(tmp, out)  # atomic; also fine onto an empty folder
        except OSError:
            if not _existing(out, synth):  # another process won the race with the same data
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def ensure_synthetic(root: Path, synth: SynthConfig) -> Path:
    """``root`` holding the dataset ``synth`` describes, generated if absent."""
    check_synth_config(synth)
    if not _existing(root, synth):
        log.info("generating the synthetic dataset at %s (%s)", root, _settings(synth))
        write_synthetic(root, synth)
    return root


def _existing(out: Path, synth: SynthConfig) -> bool:
    """True if ``out`` is this dataset; False if absent or empty; DataError otherwise."""
    if not out.exists():
        return False
    if not out.is_dir():
        raise DataError(f"{out}: exists and is not a folder")
    marker = out / MARKER
    if not marker.is_file():
        if any(out.iterdir()):
            raise DataError(
                f"{out}: exists but is not a vidnas synthetic dataset (no {MARKER}); "
                "choose another folder (data.root)"
            )
        return False
    try:
        saved = json.loads(marker.read_text())["settings"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise DataError(f"{marker}: unreadable ({err}); delete {out} to regenerate it") from None
    if saved != _settings(synth):
        raise DataError(
            f"{out}: holds a synthetic dataset made with {saved}, not {_settings(synth)} "
            "(data.synth); delete the folder or choose another (data.root)"
        )
    return True


def check_synth_config(synth: SynthConfig) -> None:
    """Refuse settings that cannot make a dataset, naming the ``data.synth`` key."""

    def need(ok: bool, key: str, msg: str) -> None:
        if not ok:
            raise ConfigError(f"data.synth.{key}: {msg}")

    tasks = ("motion", "order", "cycle", "echo")
    need(synth.task in tasks, "task", f"one of {', '.join(tasks)}, got {synth.task!r}")
    if synth.task == "echo":
        need(synth.classes == 4, "classes", "the echo task has 4 classes")
        need(synth.lag >= 1, "lag", "must be >= 1 frame")
        need(
            synth.frames >= synth.lag + 1,
            "frames",
            f"must be >= lag + 1 ({synth.lag + 1}) so that a video shows its step",
        )
    elif synth.task in ("order", "cycle"):
        need(synth.classes == 4, "classes", f"the {synth.task} task has 4 classes")
        need(synth.event >= 1, "event", "must be >= 1 frame")
        need(synth.period > synth.event, "period", "must be longer than event")
        need(
            synth.frames >= synth.period + synth.event,
            "frames",
            f"must be >= period + event ({synth.period + synth.event}) so that a video "
            "shows two flashes",
        )
    else:
        need(
            2 <= synth.classes <= len(CLASS_NAMES),
            "classes",
            f"the synthetic dataset has 2 to {len(CLASS_NAMES)} classes",
        )
    need(synth.per_class >= 2, "per_class", "must be >= 2 (a train and a test group)")
    need(synth.frames >= 2, "frames", "must be >= 2")
    need(synth.size >= 16, "size", "must be >= 16 pixels")
    need(synth.fps >= 1, "fps", "must be >= 1")


def _describe(synth: SynthConfig, label: int, name: str) -> str:
    """One class in the marker: its velocity programme, directions or step."""
    if synth.task == "cycle":
        return f"the colour advances {label + 1} of 5 each flash"
    if synth.task == "echo":
        return f"each frame's colour comes back {label + 1} of 5 on, {synth.lag} frames later"
    if synth.task == "order":
        top, bottom = ("backward" if b else "forward" for b in (label // 2, label % 2))
        return f"colours cycle {top} on top, {bottom} below"
    return "".join("+" if s > 0 else "-" if s < 0 else "0" for s in program_steps(name))


def _generate(out: Path, synth: SynthConfig) -> None:
    names = class_names(synth)
    sizes = groups_of(synth.per_class)
    lists = out / LIST_DIR
    lists.mkdir()
    entries: list[tuple[str, int, int]] = []  # (relative path, label, group)
    for label, name in enumerate(names):
        (out / VIDEO_DIR / name).mkdir(parents=True)
        for g, clips in enumerate(sizes, 1):
            for c in range(1, clips + 1):
                rel = f"{name}/v_{name}_g{g:02d}_c{c:02d}.avi"
                seed = derive_seed("synth", synth.seed, label, g, c)
                if synth.task == "echo":
                    video = render_echo_video(label, synth.frames, synth.size, synth.lag, seed)
                elif synth.task in ("order", "cycle"):
                    render = render_order_video if synth.task == "order" else render_cycle_video
                    video = render(label, synth.frames, synth.size, synth.period, synth.event, seed)
                else:
                    video = render_video(name, synth.frames, synth.size, seed)
                encode_avi(out / VIDEO_DIR / rel, video, synth.fps)
                entries.append((rel, label, g))
    class_ind = "".join(f"{i + 1} {n}\n" for i, n in enumerate(names))
    (lists / "classInd.txt").write_text(class_ind)
    for split in (1, 2, 3):
        tested = split_test_groups(len(sizes), split)
        train = "".join(f"{p} {lab + 1}\n" for p, lab, g in entries if g not in tested)
        test = "".join(f"{p}\n" for p, _, g in entries if g in tested)
        (lists / f"trainlist{split:02d}.txt").write_text(train)
        (lists / f"testlist{split:02d}.txt").write_text(test)
    h, w = frame_size(synth.size)
    marker = {
        "format": FORMAT,
        "settings": _settings(synth),
        "frame_size": [h, w],
        "classes": {n: _describe(synth, label, n) for label, n in enumerate(names)},
    }
    (out / MARKER).write_text(json.dumps(marker, indent=2) + "\n")
