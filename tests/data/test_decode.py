from __future__ import annotations

import random

import av
import numpy as np
import pytest
from datahelpers import ASSETS, make_broken_files, sequential_frames, write_video

from vidnas.data.decode import VideoReader, probe, read_frames
from vidnas.errors import DataError, VideoError


def _check_random_clips(path, reference, clips=12, length=16, seed=0):
    """Clips read by seeking equal the same frames of a full sequential decode."""
    n = len(reference)
    rng = random.Random(seed)
    starts = [0, n // 2, max(0, n - length), n - 1] + [rng.randrange(n) for _ in range(clips)]
    for start in starts:
        indices = [start + k for k in range(length)]
        with VideoReader(path) as reader:
            got = reader.read(indices).numpy()
        want = reference[np.minimum(indices, n - 1)]  # past the end: the last frame repeats
        assert np.array_equal(got, want), f"{path.name}: clip from frame {start} differs"


@pytest.mark.parametrize(
    ("name", "frames", "fps", "size"),
    [("test.avi", 164, 25, (240, 320)), ("demo.mp4", 280, 28, (256, 340))],
)
def test_real_clips_seek_frame_accurately(name, frames, fps, size):
    path = ASSETS / name
    reference = sequential_frames(path)
    info = probe(path)
    assert (info.frames, info.fps, (info.height, info.width)) == (frames, fps, size)
    assert info.exact and len(reference) == frames
    _check_random_clips(path, reference, clips=6)


def test_avi_packed_bframe_timestamps_are_repaired():
    # UCF101-style XviD AVI: FFmpeg's timestamps come out permuted (1, 2, 4, 3, ...)
    # while the frames are in display order; ordering by pts would swap frames.
    path = ASSETS / "test.avi"
    with av.open(str(path)) as c:
        pts = [f.pts for f in c.decode(video=0)][:8]
    assert pts != sorted(pts)
    reference = sequential_frames(path)
    with VideoReader(path) as reader:
        assert np.array_equal(reader.read(range(0, 8)).numpy(), reference[:8])
        assert np.array_equal(reader.read(range(100, 108)).numpy(), reference[100:108])


@pytest.mark.parametrize(
    ("suffix", "codec", "fmt", "bframes", "exact"),
    [
        ("mp4", "libx264", None, 2, True),  # H.264 with B-frames, as Kinetics ships
        ("avi", "mpeg4", None, 2, True),  # MPEG-4 Part 2 with B-frames, as UCF101 ships
        ("webm", "libvpx-vp9", None, 0, False),  # no frame count in the container
        ("mkv", "libx264", None, 2, False),
        ("mov", "mpeg4", None, 0, True),
        ("ts", "libx264", "mpegts", 2, False),  # seeks by byte estimates, may overshoot
        ("h264", "libx264", "h264", 2, False),  # raw stream: no timestamps at all
    ],
)
def test_containers_seek_frame_accurately(tmp_path, suffix, codec, fmt, bframes, exact):
    path = write_video(tmp_path / f"v.{suffix}", 120, codec=codec, fmt=fmt, bframes=bframes, gop=24)
    reference = sequential_frames(path)
    info = probe(path)
    assert info.exact == exact
    assert abs(info.frames - len(reference)) <= 1
    _check_random_clips(path, reference)


def test_forward_reads_continue_and_backward_reads_seek(tmp_path):
    path = write_video(tmp_path / "v.mp4", 90, codec="libx264", bframes=2, gop=15)
    reference = sequential_frames(path)
    with VideoReader(path) as reader:
        for start in range(0, 90, 13):  # multi-clip testing reads forward
            idx = list(range(start, min(90, start + 5)))
            assert np.array_equal(reader.read(idx).numpy(), reference[idx])
        idx = [40, 3, 3, 80, 0]  # any order, repeats
        assert np.array_equal(reader.read(idx).numpy(), reference[idx])


def test_seeking_decodes_one_group_not_the_whole_file(tmp_path):
    path = write_video(tmp_path / "long.mp4", 600, codec="libx264", bframes=2, gop=30)
    reference = sequential_frames(path)
    with VideoReader(path, threads=1) as reader:
        got = reader.read(range(500, 516)).numpy()
        decoded = reader.decoded_frames
    assert np.array_equal(got, reference[500:516])
    # frame 0 on open + at most one group of pictures before the clip + the clip
    # + the small reorder window: far below the 516 a decode from the start needs.
    assert decoded < 1 + 30 + 16 + 10, decoded


def test_short_video_repeats_its_last_frame(tmp_path):
    path = write_video(tmp_path / "short.avi", 5)
    reference = sequential_frames(path)
    got = read_frames(path, range(16)).numpy()
    assert got.shape == (16, 48, 64, 3) and got.dtype == np.uint8
    assert np.array_equal(got[:5], reference)
    assert all(np.array_equal(got[k], reference[4]) for k in range(5, 16))


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("empty", "empty file (0 bytes)"),
        ("truncated", "truncated"),
        ("text", "not a readable video"),
        ("directory", "is a directory"),
        ("dangling", "file not found"),
    ],
)
def test_broken_files_raise_video_error_with_reason(tmp_path, kind, reason):
    good = write_video(tmp_path / "good.avi", 200, gop=12)
    path = make_broken_files(tmp_path / "bad", good)[kind]
    with pytest.raises(VideoError) as err, VideoReader(path) as reader:
        reader.read([reader.info.frames - 1])  # a truncated file opens, then ends early
    assert reason in err.value.reason
    assert isinstance(err.value, DataError) and str(path) in str(err.value)


def test_missing_file(tmp_path):
    with pytest.raises(VideoError, match="file not found"):
        probe(tmp_path / "nope.mp4")
