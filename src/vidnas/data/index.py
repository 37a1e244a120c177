"""The list of videos of one split: what every dataset format is read into
(:mod:`vidnas.data.formats` reads them).

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
