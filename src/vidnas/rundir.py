"""The run directory: everything one run writes, in one place.

RUN/
  config.yaml        the resolved config (what `--resume` reads back)
  split.json         the data split, written once and never recomputed
  metrics.jsonl      one JSON object per epoch
  tb/                TensorBoard event files
  checkpoints/       last.pt (and best.pt when training)
  plots/             PNG figures
  report.md          a human-readable summary
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from vidnas.checkpoint import CheckpointError, atomic_write_text, load_checkpoint
from vidnas.config import Config, ConfigError, dump_config, load_config


def default_run_dir(kind: str, root: str | Path = "runs") -> Path:
    return Path(root) / f"{kind}-{time.strftime('%Y%m%d-%H%M%S')}"


class RunDir:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @property
    def config_path(self) -> Path:
        return self.path / "config.yaml"

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def last_checkpoint(self) -> Path:
        return self.checkpoints / "last.pt"

    @property
    def plots(self) -> Path:
        return self.path / "plots"

    @property
    def tb(self) -> Path:
        return self.path / "tb"

    def create(self, cfg: Config) -> None:
        """Start a new run here; refuse a directory that already holds one (a directory
        whose run stopped before its first checkpoint is started afresh)."""
        if self.last_checkpoint.exists():
            raise ConfigError(
                f"{self.path} already holds a run; use --resume {self.path} to continue it "
                "or choose another --out"
            )
        for d in (self.path, self.checkpoints, self.plots):
            d.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.config_path, dump_config(cfg))

    def load_config(self) -> Config:
        if not self.config_path.exists():
            raise ConfigError(f"{self.path} is not a run directory (no config.yaml)")
        return load_config(self.config_path)

    def write_metrics(self, rows: list[dict[str, Any]]) -> None:
        """Rewrite metrics.jsonl from the run's history (kept in the checkpoint), so a
        resumed run never duplicates or loses an epoch's line."""
        text = "".join(json.dumps(r) + "\n" for r in rows)
        atomic_write_text(self.metrics_path, text)

    def summary_writer(self, purge_step: int | None = None) -> Any:
        """A TensorBoard writer; on resume, events after ``purge_step`` are discarded."""
        from torch.utils.tensorboard import SummaryWriter

        return SummaryWriter(str(self.tb), purge_step=purge_step)


def open_run(
    kind: str, cfg: Config | None, out: str | Path | None, resume: str | Path | None
) -> tuple[RunDir, Config, dict[str, Any] | None]:
    """A new run directory for ``cfg``, or the run in ``resume`` with its saved config
    and its last checkpoint (of this ``kind``)."""
    if resume is not None:
        run = RunDir(resume)
        cfg = run.load_config()
        if not run.last_checkpoint.exists():
            raise CheckpointError(
                f"{run.path}: nothing to resume (the run stopped before its first checkpoint); "
                "start it again"
            )
        return run, cfg, load_checkpoint(run.last_checkpoint, kind)
    if cfg is None:
        raise ConfigError(f"a {kind} run needs a config, or a run directory to resume")
    run = RunDir(out or default_run_dir(kind))
    run.create(cfg)
    return run, cfg, None
