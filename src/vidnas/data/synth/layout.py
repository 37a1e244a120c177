"""The synthetic dataset on disk: real video files in the UCF101 layout
(``ucfTrainTestlist/`` with ``classInd.txt`` and three train/test splits,
``UCF-101/<Class>/v_<Class>_gXX_cYY.avi``, MPEG-4 Part 2 in AVI as UCF101 ships),
so it exercises the same reading path as the real dataset, whatever the task.

Every video is a pure function of ``(seed, class, group, clip)``; the same
settings give byte-identical files. Groups are only names here (UCF101's groups
share actor and scene; these share nothing, so the search split, which ignores
groups, leaks nothing), and split k tests on the k-th run of about 28% of the
groups, as UCF101's splits do. A marker (``synth.json``) records the settings the
task reads; a folder made with other settings is refused, not overwritten.
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
from typing import Any

from vidnas.config import SynthConfig
from vidnas.data.sampling import derive_seed
from vidnas.data.synth.context import TASK as CONTEXT
from vidnas.data.synth.detail import TASK as DETAIL
from vidnas.data.synth.echo import TASK as ECHO
from vidnas.data.synth.motion import TASK as MOTION
from vidnas.data.synth.task import SynthTask, need
from vidnas.data.synth.video import encode_avi, frame_size
from vidnas.errors import DataError

log = logging.getLogger("vidnas.data")

FORMAT = "vidnas-synth/1"
MARKER = "synth.json"
LIST_DIR = "ucfTrainTestlist"
VIDEO_DIR = "UCF-101"

TASKS: dict[str, SynthTask] = {t.name: t for t in (MOTION, ECHO, DETAIL, CONTEXT)}


def task_of(synth: SynthConfig) -> SynthTask:
    need(synth.task in TASKS, "task", f"one of {', '.join(TASKS)}, got {synth.task!r}")
    return TASKS[synth.task]


def class_names(synth: SynthConfig) -> tuple[str, ...]:
    """The classes of the dataset ``synth`` describes, in label order."""
    return task_of(synth).class_names(synth)


def check_synth_config(synth: SynthConfig) -> None:
    """Refuse settings that cannot make a dataset, naming the ``data.synth`` key."""
    task_of(synth).check(synth)
    need(synth.per_class >= 2, "per_class", "must be >= 2 (a train and a test group)")
    need(synth.frames >= 2, "frames", "must be >= 2")
    need(synth.size >= 16, "size", "must be >= 16 pixels")
    need(synth.fps >= 1, "fps", "must be >= 1")


def settings(synth: SynthConfig) -> dict[str, Any]:
    """What the marker records: the settings the task reads."""
    everything = asdict(synth)
    return {k: everything[k] for k in task_of(synth).keys}


def groups_of(per_class: int) -> list[int]:
    """Clips per group for one class: about 4 per group, 4 to 25 groups."""
    g = min(per_class, max(4, min(25, math.ceil(per_class / 4))))
    return [per_class // g + (1 if i < per_class % g else 0) for i in range(g)]


def split_test_groups(n_groups: int, split: int) -> set[int]:
    """1-based groups tested in ``split`` (1..3): the split-th run of ~28% of them."""
    n = max(1, round(n_groups * 7 / 25))
    return {((split - 1) * n + j) % n_groups + 1 for j in range(n)}


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
        log.info("generating the synthetic dataset at %s (%s)", root, settings(synth))
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
    if saved != settings(synth):
        raise DataError(
            f"{out}: holds a synthetic dataset made with {saved}, not {settings(synth)} "
            "(data.synth); delete the folder or choose another (data.root)"
        )
    return True


def _generate(out: Path, synth: SynthConfig) -> None:
    task = task_of(synth)
    names = task.class_names(synth)
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
                encode_avi(out / VIDEO_DIR / rel, task.render(label, name, synth, seed), synth.fps)
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
        "settings": settings(synth),
        "frame_size": [h, w],
        "classes": {n: task.describe(label, n, synth) for label, n in enumerate(names)},
    }
    (out / MARKER).write_text(json.dumps(marker, indent=2) + "\n")
