"""Frame-accurate reads of a few frames from anywhere in a video, with PyAV.

Frame ``k`` of a video is the k-th frame a full sequential decode outputs. A
clip from the middle of a long video is read by seeking (FFmpeg jumps back to
the key frame at or before the target) and decoding forward, so it costs one
group of pictures, not the whole file. Each decoded frame is then placed by
its timestamp: ``round((pts - pts0) * time_base * fps)``. Two traps make that
less simple than it looks, and both are in UCF101's own files:

- AVI stores no presentation timestamps. FFmpeg derives them from decode
  order, and in MPEG-4 Part 2 files with packed B-frames (XviD, as UCF101
  ships) they come out locally permuted (1, 2, 4, 3, 5, 7, 6, ...) although
  the frames themselves arrive in display order. So the k-th frame out of the
  decoder gets the k-th smallest timestamp of a small window of frames around
  it: the identity for containers with correct timestamps, and the repair for
  these. (Sorting the frames by their own pts, as torchvision does, swaps
  frames.)
- Frame 0's timestamp is not always the stream's start time (the same AVIs:
  start 0, first frame 1). The reader decodes frame 0 when it opens a file and
  uses its timestamp as the origin; that also proves the file decodes at all.

Frames without timestamps are counted in output order and such files are read
from the start, never seeked; so is a file whose seeks land past their target
(MPEG-TS near its end). The frame count comes from the container when it
records one (AVI, MP4), is estimated from the duration otherwise (MKV and WebM
store none) and, with no duration either (raw streams), counted from the
packets. Reading past the real end returns the last frame: that is the rule
for videos shorter than a clip (the last frame repeats) and it absorbs an
estimate that is a frame or two long. A file that ends more than 2 frames
before the count its container records, or more than a second (and 10%) before
an estimated one, is truncated and raises :class:`VideoError`; so does any
file that cannot be opened or decoded, with the reason in words.
"""

from __future__ import annotations

import heapq
import logging
import math
import os
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch
from av.video.reformatter import VideoReformatter

from vidnas.errors import VideoError

log = logging.getLogger("vidnas.data")

# Frames a decoder may emit out of timestamp order (packed B-frames permute neighbours).
_REORDER = 4
# Decode forward rather than seek when the next wanted frame is at most this far ahead.
_SEEK_GAP = 32
# A file is truncated when it ends more than this many frames before its recorded count
# (containers legitimately disagree with their count by a frame or two).
_TRUNCATION_SLACK = 2
VIDEO_EXTENSIONS = (".avi", ".mp4", ".mkv", ".webm", ".mov", ".m4v", ".mpg", ".mpeg", ".flv")


@dataclass(frozen=True)
class VideoInfo:
    """What a clip sampler needs to know about a video before reading it."""

    path: str
    width: int
    height: int
    fps: float
    # Number of frames: recorded by the container when ``exact``, else estimated.
    frames: int
    exact: bool
    codec: str


def default_threads(width: int, height: int) -> int:
    """Decoder threads when the config leaves it open: one inside a DataLoader
    worker (the workers are the parallelism; more threads only contend for the
    same cores) and for frames under 640x360 (starting threads costs more than
    they save: 0.6 ms against 0.2 ms to open a 96x72 video); else up to four
    (a 1280x720 H.264 clip: 116 ms with one, 85 ms with four on two cores)."""
    if torch.utils.data.get_worker_info() is not None or width * height < 640 * 360:
        return 1
    return max(1, min(4, os.cpu_count() or 1))


def _reason(err: BaseException) -> str:
    if isinstance(err, IsADirectoryError):
        return "is a directory, not a video file"
    if isinstance(err, FileNotFoundError):
        return "file not found"
    if isinstance(err, PermissionError):
        return "permission denied"
    if isinstance(err, av.error.InvalidDataError):
        return "not a readable video (FFmpeg: invalid data found when processing input)"
    if isinstance(err, av.FFmpegError):
        return f"FFmpeg error: {getattr(err, 'strerror', None) or err}"
    if isinstance(err, OSError):
        return f"cannot read: {err.strerror or err}"
    return f"{type(err).__name__}: {err}"


class VideoReader:
    """An open video that reads frames by index; use as a context manager.

    Opening decodes frame 0, so a reader that opened is a file that decodes.
    Consecutive reads that move forward continue the same decode instead of
    seeking again, which is what multi-clip testing does.
    """

    def __init__(self, path: str | Path, threads: int | None = None) -> None:
        self.path = str(path)
        try:
            size = os.stat(self.path).st_size
            if os.path.isdir(self.path):
                raise IsADirectoryError(self.path)
        except OSError as err:
            raise VideoError(self.path, _reason(err)) from None
        if size == 0:
            raise VideoError(self.path, "empty file (0 bytes)")
        self._threads = threads
        self._reformatter = VideoReformatter()  # one per reader: 4x faster than per frame
        self._origin: Fraction | None = None
        self._timestamps = True  # False: the file has none; frames are counted instead
        self._can_seek = True
        self._ended_at: int | None = None  # frames really decodable, once EOF was seen
        self._landing: int | None = None  # after a seek: the frame we must not be past
        self.decoded_frames = 0  # frames the decoder produced, for tests and benchmarks
        self._open()
        try:
            self._first_frame()
        except BaseException:
            self._container.close()
            raise

    def _open(self) -> None:
        try:
            self._container = av.open(self.path, metadata_errors="ignore")
        except Exception as err:  # PyAV raises a wide family; all mean "cannot open"
            raise VideoError(self.path, _reason(err)) from None
        if not self._container.streams.video:
            self._container.close()
            raise VideoError(self.path, "no video stream")
        s = self._container.streams.video[0]
        threads = self._threads
        if threads is None:
            threads = default_threads(s.codec_context.width, s.codec_context.height)
        if threads != 1:
            s.thread_type = "AUTO"
            s.thread_count = threads  # 0: FFmpeg picks
        self._stream = s
        rate = s.average_rate or s.guessed_rate or s.base_rate
        if not rate or rate <= 0:
            log.debug("%s: no frame rate recorded, assuming 25 fps", self.path)
            rate = Fraction(25)
        self._fps = Fraction(rate)
        self._tb = Fraction(s.time_base) if s.time_base else Fraction(1, 1_000_000)
        self._step = 1 / (self._fps * self._tb)  # one frame, in pts units
        self._gen: Iterator[tuple[int, av.VideoFrame]] | None = self._decode()

    def _first_frame(self) -> None:
        first = self._next()
        if first is None:
            raise VideoError(self.path, "no decodable frame")
        self._head: tuple[int, av.VideoFrame] | None = first
        s = self._stream
        if s.frames and s.frames > 0:
            frames, exact = int(s.frames), True
        else:
            frames, exact = self._estimate_frames(), False
        self.info = VideoInfo(
            self.path,
            first[1].width,
            first[1].height,
            float(self._fps),
            max(frames, 1),
            exact,
            s.codec_context.name,
        )

    def _estimate_frames(self) -> int:
        s = self._stream
        if s.duration:
            return max(1, round(float(s.duration * self._tb) * float(self._fps)))
        if self._container.duration:
            return max(1, round(self._container.duration / 1_000_000 * float(self._fps)))
        # No duration at all (raw elementary streams): count packets, which reads the
        # file but decodes nothing; then start again from frame 0.
        try:
            with av.open(self.path, metadata_errors="ignore") as c:
                count = sum(1 for p in c.demux(c.streams.video[0]) if p.size)
        except Exception as err:
            raise VideoError(self.path, _reason(err)) from None
        return max(1, count)

    # ------------------------------------------------------------------ decoding

    def _decode(self) -> Iterator[tuple[int, av.VideoFrame]]:
        """Frames in output order with their index; timestamps repaired as the module says."""
        heap: list[Fraction] = []
        pending: deque[av.VideoFrame] = deque()
        last: Fraction | None = None

        def place(pts: Fraction) -> int:
            if self._origin is None:
                self._origin = pts
            return round((pts - self._origin) * self._tb * self._fps)

        for frame in self._container.decode(self._stream):
            self.decoded_frames += 1
            if frame.pts is not None and self._timestamps:
                pts = Fraction(frame.pts)
            elif last is not None:
                pts = last + self._step
            else:  # no timestamps: count frames, and never seek in this file
                pts = Fraction(0)
                self._timestamps = self._can_seek = False
            last = pts if last is None else max(pts, last)
            heapq.heappush(heap, pts)
            pending.append(frame)
            if len(pending) > _REORDER:
                yield place(heapq.heappop(heap)), pending.popleft()
        while pending:
            yield place(heapq.heappop(heap)), pending.popleft()

    def _next(self) -> tuple[int, av.VideoFrame] | None:
        assert self._gen is not None
        try:
            return next(self._gen)
        except (StopIteration, av.error.EOFError):
            return None
        except Exception as err:  # the container opened, so the data itself is bad
            raise VideoError(self.path, f"corrupt or truncated: {_reason(err)}") from None

    def _jump(self, index: int) -> None:
        """Continue decoding from the key frame at or before frame ``index``."""
        self._head = None
        if not self._can_seek or index == 0 or self._origin is None:
            self._rewind()
            return
        target = self._origin + index * self._step
        try:
            self._container.seek(
                math.floor(target), backward=True, any_frame=False, stream=self._stream
            )
        except Exception as err:
            raise VideoError(self.path, f"seek failed: {_reason(err)}") from None
        self._gen = self._decode()
        self._landing = index

    def _rewind(self) -> None:
        """Back to frame 0 by reopening: unlike a seek to 0, it works for every file."""
        self._container.close()
        self._open()
        self._landing = None

    def _frame_array(self, frame: av.VideoFrame) -> np.ndarray:
        w, h = self.info.width, self.info.height  # a stream that changes size keeps the first
        return self._reformatter.reformat(frame, format="rgb24", width=w, height=h).to_ndarray()

    def read(self, indices: Sequence[int]) -> torch.Tensor:
        """Frames ``indices`` (any order, repeats allowed) as uint8 ``[N, H, W, 3]``.

        Each index gets the first frame placed at or after it; indices past the
        end get the last frame.
        """
        wanted = [max(0, int(i)) for i in indices]
        if not wanted:
            raise ValueError("read() needs at least one frame index")
        todo = sorted(set(wanted))
        got: dict[int, np.ndarray] = {}
        pos = 0
        cur = head = self._head
        target = -1  # the frame the last seek aimed at: never seek for the same one twice
        if head is None or head[0] > todo[0]:
            cur = head = None
            self._jump(target := todo[0])
        while pos < len(todo):
            if head is not None:
                nxt, head = head, None
            else:
                nxt = self._next()
            if self._landing is not None:
                if nxt is None or nxt[0] > self._landing:
                    # The seek overshot (some demuxers seek by decode time or by byte
                    # estimates): read this file from the start from now on.
                    log.debug("%s: seeking overshoots, decoding from the start", self.path)
                    self._can_seek = False
                    self._rewind()
                    continue
                self._landing = None
            if nxt is None:
                break
            cur = nxt
            idx, frame = cur
            if todo[pos] <= idx:
                arr = self._frame_array(frame)
                while pos < len(todo) and todo[pos] <= idx:
                    got[todo[pos]] = arr
                    pos += 1
            elif self._can_seek and todo[pos] - idx > _SEEK_GAP and todo[pos] > target:
                self._jump(target := todo[pos])
        self._head = cur if pos == len(todo) else None
        if pos < len(todo):
            self._at_end(cur, todo[pos])
            last = self._frame_array(cur[1])  # type: ignore[index]
            for w in todo[pos:]:
                got[w] = last
        return torch.from_numpy(np.stack([got[w] for w in wanted]))

    def _at_end(self, last: tuple[int, av.VideoFrame] | None, wanted: int) -> None:
        if last is None:
            raise VideoError(self.path, f"no frame decodes at or after frame {wanted}")
        decoded = last[0] + 1
        self._ended_at = decoded
        n = self.info.frames
        # A recorded count is trusted to a couple of frames; a count estimated from the
        # duration only to a second or 10% (the container's duration covers audio too).
        slack = _TRUNCATION_SLACK if self.info.exact else max(self.info.fps, 0.1 * n)
        if decoded < n - slack:
            what = "records" if self.info.exact else "implies"
            raise VideoError(
                self.path,
                f"truncated or corrupt: decoding stops at frame {decoded} of the {n} "
                f"its container {what}",
            )

    @property
    def frames(self) -> int:
        """The frame count, corrected once a read has hit the real end."""
        return self._ended_at if self._ended_at is not None else self.info.frames

    def close(self) -> None:
        self._gen = None
        self._head = None
        self._container.close()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def probe(path: str | Path, threads: int | None = 1) -> VideoInfo:
    """Open ``path``, decode its first frame and return its :class:`VideoInfo`."""
    with VideoReader(path, threads) as reader:
        return reader.info


def read_frames(
    path: str | Path, indices: Sequence[int], threads: int | None = None
) -> torch.Tensor:
    """Frames ``indices`` of ``path`` as uint8 ``[N, H, W, 3]`` (see :meth:`VideoReader.read`)."""
    with VideoReader(path, threads) as reader:
        return reader.read(indices)
