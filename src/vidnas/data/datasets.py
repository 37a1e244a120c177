"""Torch datasets of clips: one clip per video for training and validation,
clips x crops views per video for testing.

Bad videos never end a run and are never hidden. An item reports every video
it could not read as ``failed = [(path, reason), ...]``; the collate function
gathers those into the batch so the main process logs each path once (see
:class:`vidnas.data.loader.BadVideoLog`), whichever worker met it. The rule
for what replaces a bad video:

- training (``ClipDataset`` mode "train"): the next index, wrapping around,
  until one reads: deterministic, so a resumed run makes the same choice;
- validation and testing (mode "eval", ``MultiViewDataset``): nothing; the
  item is marked skipped (``clip`` is None) and the collate function drops it.

A dataset with no readable video at all raises :class:`DataError` when it is
built: it probes videos in order until one decodes from its first frame to its
last, which for a healthy dataset is the first.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

import torch

from vidnas.config import Config
from vidnas.data.decode import VideoReader
from vidnas.data.index import VideoIndex
from vidnas.data.sampling import generator, train_clip, uniform_clips
from vidnas.data.transforms import ClipTransform, eval_clip, multi_crops
from vidnas.data.transforms import train_clip as train_transform
from vidnas.errors import DataError, VideoError

log = logging.getLogger("vidnas.data")


class _VideoDataset(torch.utils.data.Dataset):
    def __init__(self, index: VideoIndex, cfg: Config) -> None:
        if not index.records:
            raise DataError(f"{index.root}: no videos to load")
        self.index = index
        self.frames = cfg.input[1]
        self.rate = cfg.data.sampling_rate
        self.transform = ClipTransform.from_config(cfg)
        self.seed = cfg.seed
        self.threads = cfg.data.decode_threads
        self.epoch = 0
        # Videos this process found unreadable, with the reason: not decoded again.
        self._bad: dict[str, str] = {}
        self._require_one_readable()

    def __len__(self) -> int:
        return len(self.index.records)

    def set_epoch(self, epoch: int) -> None:
        """The epoch whose random choices ``__getitem__`` makes (see ``sampling``)."""
        self.epoch = int(epoch)

    def _require_one_readable(self) -> None:
        first_error = None
        for rec in self.index.records:
            path = self.index.resolve(rec)
            try:
                with VideoReader(path, threads=1) as reader:
                    reader.read([reader.info.frames - 1])  # first and last frame decode
                return
            except VideoError as err:
                self._bad[path] = err.reason
                first_error = first_error or err
        raise DataError(
            f"{self.index.root}: none of the {len(self.index)} videos is readable "
            f"(first: {first_error})"
        )

    def _open(self, path: str) -> VideoReader:
        if path in self._bad:
            raise VideoError(path, self._bad[path])
        try:
            return VideoReader(path, self.threads)
        except VideoError as err:
            self._bad[path] = err.reason
            raise

    def _read(self, path: str, pick: Any, *args: Any) -> Any:
        """Open ``path`` and return ``pick(reader, *args)``, remembering a failure."""
        reader = self._open(path)
        try:
            return pick(reader, *args)
        except VideoError as err:
            self._bad[path] = err.reason
            raise
        finally:
            reader.close()


class ClipDataset(_VideoDataset):
    """One clip per video: ``clip`` float32 [3, T, H, W], ``label``, ``index``, ``failed``.

    ``mode`` "train": a random clip (temporal jitter), random scale, crop and flip,
    all from a generator seeded by ``(seed, epoch, index)``. ``mode`` "eval": the
    centre clip, short side to ``data.test_short_side``, centre crop.
    """

    def __init__(self, index: VideoIndex, cfg: Config, mode: Literal["train", "eval"]) -> None:
        if mode not in ("train", "eval"):
            raise ValueError(f"mode must be 'train' or 'eval', got {mode!r}")
        self.mode = mode
        super().__init__(index, cfg)
        c, t, h, w = cfg.input
        self.clip_shape = (c, t, h, w)

    def _clip(self, reader: VideoReader, i: int, attempt: int) -> torch.Tensor:
        n = reader.info.frames
        if self.mode == "train":
            gen = generator(self.seed, self.epoch, i, attempt)
            frames = reader.read(train_clip(n, self.frames, self.rate, gen))
            return train_transform(frames, self.transform, gen)
        frames = reader.read(uniform_clips(n, self.frames, self.rate, 1)[0])
        return eval_clip(frames, self.transform)

    def __getitem__(self, i: int) -> dict[str, Any]:
        records = self.index.records
        failed: list[tuple[str, str]] = []
        attempts = len(records) if self.mode == "train" else 1
        for attempt in range(attempts):
            j = (i + attempt) % len(records)
            path = self.index.resolve(records[j])
            try:
                clip = self._read(path, self._clip, i, attempt)
            except VideoError as err:
                failed.append((path, err.reason))
                continue
            return {"clip": clip, "label": records[j].label, "index": j, "failed": failed}
        if self.mode == "train":
            raise DataError(f"{self.index.root}: no video of this dataset is readable any more")
        return {"clip": None, "label": records[i].label, "index": i, "failed": failed}


def _views(
    reader: VideoReader, frames: int, rate: int, t: ClipTransform, clips: int, crops: int
) -> torch.Tensor:
    indices = uniform_clips(reader.info.frames, frames, rate, clips)
    decoded = reader.read([k for clip in indices for k in clip])  # one pass, in order
    return torch.cat([multi_crops(f, t, crops) for f in decoded.split(frames)])


class MultiViewDataset(_VideoDataset):
    """``clips`` clips spread over each video x ``crops`` crops (1: centre; 3: along the
    long side): ``clip`` float32 [clips * crops, 3, T, H, W], clip-major; ``None`` for a
    video that cannot be read (reported in ``failed`` and dropped by the collate)."""

    def __init__(self, index: VideoIndex, cfg: Config, clips: int, crops: int) -> None:
        if clips < 1 or crops not in (1, 3):
            raise ValueError(f"need clips >= 1 and crops 1 or 3, got {clips} and {crops}")
        self.clips, self.crops = clips, crops
        super().__init__(index, cfg)
        c, t, h, w = cfg.input
        self.clip_shape = (clips * crops, c, t, h, w)

    def __getitem__(self, i: int) -> dict[str, Any]:
        rec = self.index.records[i]
        path = self.index.resolve(rec)
        try:
            views = self._read(
                path, _views, self.frames, self.rate, self.transform, self.clips, self.crops
            )
        except VideoError as err:
            return {"clip": None, "label": rec.label, "index": i, "failed": [(path, err.reason)]}
        return {"clip": views, "label": rec.label, "index": i, "failed": []}


def video_views(path: str, cfg: Config, clips: int, crops: int) -> torch.Tensor:
    """The test views of one video file, float32 [clips * crops, 3, T, H, W].

    Raises :class:`DataError` (a :class:`VideoError`) naming the file and the reason
    if it cannot be read.
    """
    t = ClipTransform.from_config(cfg)
    with VideoReader(path, cfg.data.decode_threads) as reader:
        return _views(reader, cfg.input[1], cfg.data.sampling_rate, t, clips, crops)
