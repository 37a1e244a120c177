"""Scan a dataset: what is listed, what is on disk, and what decodes.

Each video is opened, its first frame decoded and its last frame read (which
seeks to the end), so a file that is empty, not a video, unreadable or cut
short is found here, before a long run trips over it.
"""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from vidnas.config import Config
from vidnas.data.decode import VideoReader
from vidnas.data.formats import load_index
from vidnas.data.index import Split, VideoIndex
from vidnas.errors import DataError, VideoError


def check_video(path: str) -> str | None:
    """None if ``path`` decodes from its first frame to its last, else the reason."""
    try:
        with VideoReader(path, threads=1) as reader:
            reader.read([reader.info.frames - 1])
    except VideoError as err:
        return err.reason
    return None


@dataclass
class SplitReport:
    """One split's counts; ``error`` is set (and the rest empty) if it could not be listed."""

    classes: list[str] = field(default_factory=list)
    listed: Counter = field(default_factory=Counter)  # class id -> videos on disk
    readable: Counter = field(default_factory=Counter)
    bad: list[tuple[str, str]] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and not self.bad and not self.missing


def check_index(index: VideoIndex, workers: int = 2) -> SplitReport:
    """Decode-check every video of ``index`` with ``workers`` threads (FFmpeg
    releases the GIL while it decodes)."""
    report = SplitReport(classes=list(index.classes), missing=list(index.missing))
    paths = [index.resolve(r) for r in index.records]
    if workers > 1:
        with ThreadPoolExecutor(workers) as pool:
            reasons = list(pool.map(check_video, paths))
    else:
        reasons = [check_video(p) for p in paths]
    for rec, path, reason in zip(index.records, paths, reasons):
        report.listed[rec.label] += 1
        if reason is None:
            report.readable[rec.label] += 1
        else:
            report.bad.append((path, reason))
    return report


def check_dataset(
    cfg: Config, splits: tuple[Split, ...] = ("train", "test"), workers: int = 2
) -> dict[str, SplitReport]:
    """A :class:`SplitReport` per split of the dataset ``cfg.data`` describes."""
    reports = {}
    for split in splits:
        try:
            index = load_index(cfg, split)
        except DataError as err:
            reports[split] = SplitReport(error=str(err))
            continue
        reports[split] = check_index(index, workers)
    return reports


def format_report(cfg: Config, reports: dict[str, SplitReport]) -> str:
    """The report as the text ``vidnas data check`` prints."""
    d = cfg.data
    where = f"{d.format} dataset at {d.root}"
    if d.format in ("ucf101", "synthetic"):
        where += f" (split {d.ucf_split})"
    lines = [where]
    for split, rep in reports.items():
        lines.append("")
        if rep.error:
            lines.append(f"{split}: cannot be listed: {rep.error}")
            continue
        total, good = sum(rep.listed.values()), sum(rep.readable.values())
        lines.append(
            f"{split}: {total} videos on disk, {good} readable, {len(rep.bad)} unreadable, "
            f"{len(rep.missing)} listed but missing; {len(rep.classes)} "
            + ("class" if len(rep.classes) == 1 else "classes")
        )
        width = max([len("class"), *(len(c) for c in rep.classes)])
        lines.append(f"  {'class'.ljust(width)}  videos  readable")
        for i, name in enumerate(rep.classes):
            lines.append(f"  {name.ljust(width)}  {rep.listed[i]:6d}  {rep.readable[i]:8d}")
        if rep.bad:
            lines.append(f"  unreadable ({len(rep.bad)}):")
            lines += [f"    {path}: {reason}" for path, reason in rep.bad]
        if rep.missing:
            lines.append(f"  listed but not on disk ({len(rep.missing)}):")
            lines += [f"    {path}" for path in rep.missing]
    return "\n".join(lines)
