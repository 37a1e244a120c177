"""The list of videos of one split: what every dataset format is read into.

A :class:`VideoIndex` is plain data (paths, integer labels, class names), so
splitting, saving and checking a dataset never touch a video. Paths are kept
relative to the dataset root when they lie under it, so a split file written
with the run still applies when the dataset moves.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from vidnas.config import Config
from vidnas.data.errors import DataError

log = logging.getLogger("vidnas.data")

Split = Literal["train", "test"]


@dataclass(frozen=True)
class VideoRecord:
    """One video: its path (absolute, or relative to the index root) and label."""

    path: str
    label: int


@dataclass
class VideoIndex:
    """The videos of one split, the class names their labels index, and the
    listed videos that are not on disk."""

    records: list[VideoRecord]
    classes: list[str]
    missing: list[str] = field(default_factory=list)
    root: str = "."

    def __len__(self) -> int:
        return len(self.records)

    def resolve(self, record: VideoRecord | str) -> str:
        """The path to open for ``record``."""
        path = record.path if isinstance(record, VideoRecord) else record
        return path if os.path.isabs(path) else os.path.join(self.root, path)

    def subset(self, records: list[VideoRecord]) -> VideoIndex:
        """The same classes and root with other records (missing files stay with the whole)."""
        return VideoIndex(list(records), list(self.classes), [], self.root)

    def class_counts(self) -> dict[str, int]:
        counts = Counter(r.label for r in self.records)
        return {name: counts.get(i, 0) for i, name in enumerate(self.classes)}


def relative_to_root(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` if it lies under it, else absolute."""
    try:
        return Path(os.path.abspath(path)).relative_to(os.path.abspath(root)).as_posix()
    except ValueError:
        return os.path.abspath(path)


def report_missing(missing: list[str], where: str) -> None:
    """Log listed-but-absent videos once per index: a count and a few examples."""
    if not missing:
        return
    shown = ", ".join(missing[:3]) + (", ..." if len(missing) > 3 else "")
    log.warning("%s: %d listed videos are not on disk (skipped): %s", where, len(missing), shown)


def load_index(cfg: Config, split: Split) -> VideoIndex:
    """The videos of ``split`` ("train" or "test") of the dataset ``cfg.data`` describes.

    The synthetic dataset is generated at ``data.root`` first if it is not there.
    Raises :class:`DataError` naming the path or key when the dataset cannot be
    read or lists no video that exists.
    """
    from vidnas.data import formats

    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    d = cfg.data
    root = Path(d.root).expanduser()
    if d.format == "synthetic":
        from vidnas.data.synth import ensure_synthetic

        ensure_synthetic(root, d.synth)
        index = formats.read_ucf101(root, split, d.ucf_split, None)
    elif d.format == "ucf101":
        index = formats.read_ucf101(root, split, d.ucf_split, d.annotations)
    elif d.format == "kinetics":
        index = formats.read_kinetics(root, split, d.annotations, d.test_annotations)
    elif d.format == "folder":
        index = formats.read_folder(root, split)
    elif d.format == "list":
        index = formats.read_list(root, split, d.annotations, d.test_annotations)
    else:  # the config's Literal type makes this unreachable from a loaded config
        raise DataError(f"data.format: unknown format {d.format!r}")
    report_missing(index.missing, f"{d.format} {split} split at {root}")
    if not index.records:
        why = f" ({len(index.missing)} listed, none on disk)" if index.missing else ""
        raise DataError(f"{root}: the {d.format} {split} split has no videos{why}")
    return index
