"""The data pipeline: video files in, normalised clip tensors out.

``decode`` reads frames with PyAV; ``index`` and ``formats`` list a dataset's
videos (synthetic, UCF101, Kinetics-400, class folders, path/label lists);
``sampling`` picks frames and seeds every random choice; ``transforms`` crops,
scales, flips and normalises in plain torch; ``split`` makes the saved search
and holdout splits; ``datasets`` and ``loader`` turn it into batches that
report bad files; ``synth`` writes the synthetic datasets (one module per task); ``check``
scans a dataset for unreadable files.
"""

from vidnas.data.check import check_dataset, check_video
from vidnas.data.datasets import ClipDataset, MultiViewDataset, video_views
from vidnas.data.decode import VideoInfo, VideoReader, probe, read_frames
from vidnas.data.formats import load_index
from vidnas.data.index import VideoIndex, VideoRecord
from vidnas.data.loader import ClipLoader, Collate, make_loader
from vidnas.data.split import holdout_split, search_split
from vidnas.data.synth import CLASS_NAMES, write_synthetic
from vidnas.data.transforms import ClipTransform
from vidnas.engine.loop import BadVideoLog  # the run's record; data reports into it
from vidnas.errors import DataError, VideoError

__all__ = [
    "CLASS_NAMES",
    "BadVideoLog",
    "ClipDataset",
    "ClipLoader",
    "ClipTransform",
    "Collate",
    "DataError",
    "MultiViewDataset",
    "VideoError",
    "VideoIndex",
    "VideoInfo",
    "VideoReader",
    "VideoRecord",
    "check_dataset",
    "check_video",
    "holdout_split",
    "load_index",
    "make_loader",
    "probe",
    "read_frames",
    "search_split",
    "video_views",
    "write_synthetic",
]
