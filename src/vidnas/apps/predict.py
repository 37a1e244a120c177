"""Label new video files with a trained network, using the test protocol's views."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from vidnas.apps.evaluate import test_config, view_probs
from vidnas.data import video_views
from vidnas.engine.distributed import Dist
from vidnas.engine.runtime import Runtime
from vidnas.errors import DataError
from vidnas.models.model_file import load_trained


@dataclass
class Prediction:
    path: str
    top: list[tuple[str, float]]  # (class name, probability), best first
    error: str | None = None


@torch.no_grad()
def predict(
    ckpt: str | Path,
    videos: Sequence[str | Path],
    views: tuple[int, int] | None = None,
    topk: int = 5,
) -> list[Prediction]:
    """Top-k classes per file; a file that cannot be read gets its error, not an exception."""
    tm = load_trained(ckpt)
    cfg = test_config(tm)
    clips, crops = views or (cfg.test.clips, cfg.test.crops)
    rt = Runtime.open(cfg.runtime, Dist())  # one process, whatever the environment says
    net = rt.module(tm.net).eval()
    out = []
    for video in videos:
        try:
            x = video_views(Path(video), cfg, clips, crops)
        except DataError as err:
            out.append(Prediction(str(video), [], str(err)))
            continue
        p = view_probs(net, x, rt, cfg.test.batch_size)
        values, idx = p.topk(min(topk, len(tm.classes)))
        out.append(
            Prediction(
                str(video),
                [(tm.classes[i], float(v)) for v, i in zip(values.tolist(), idx.tolist())],
            )
        )
    return out
