"""The run directory and the run lifecycle: everything one run writes, in one place,
and the one way a run starts, resumes, or is found finished.

RUN/
  config.yaml        the resolved config (what `--resume` reads back), headed by a
                     comment on where the run ran (device, precision, processes)
  split.json         the data split, written once and never recomputed
  metrics.jsonl      one JSON object per epoch
  tb/                TensorBoard event files
  checkpoints/       last.pt (and best.pt when training)
  plots/             PNG figures
  report.md          a human-readable summary

A run's whole state lives in ``checkpoints/last.pt`` (written atomically), so
"has this run started", "did it finish" and "where does it resume" are all
questions about that one file, answered here and nowhere else.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

from vidnas.config import Config, dump_config, load_config
from vidnas.engine import distributed
from vidnas.engine.checkpoint import atomic_write_text, load_checkpoint
from vidnas.errors import RunError


def default_run_dir(kind: str, root: str | Path = "runs") -> Path:
    return Path(root) / f"{kind}-{time.strftime('%Y%m%d-%H%M%S')}"


class RunDir:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    # ------------------------------------------------------------------ where things are

    @property
    def config_path(self) -> Path:
        return self.path / "config.yaml"

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def split_path(self) -> Path:
        return self.path / "split.json"

    @property
    def arch_path(self) -> Path:
        return self.path / "arch.json"

    @property
    def report_path(self) -> Path:
        return self.path / "report.md"

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def last_checkpoint(self) -> Path:
        return self.checkpoints / "last.pt"

    @property
    def best_checkpoint(self) -> Path:
        return self.checkpoints / "best.pt"

    @property
    def plots(self) -> Path:
        return self.path / "plots"

    @property
    def tb(self) -> Path:
        return self.path / "tb"

    # ------------------------------------------------------------------ lifecycle

    @property
    def started(self) -> bool:
        """True once the run has written its first checkpoint (it can be resumed)."""
        return self.last_checkpoint.exists()

    def finished(self, kind: str) -> bool:
        """True if the run's last checkpoint (of ``kind``) says it ran to the end."""
        return self.started and bool(load_checkpoint(self.last_checkpoint, kind).get("done"))

    def create(self, cfg: Config) -> None:
        """Start a new run here; refuse a directory that already holds one (a directory
        whose run stopped before its first checkpoint is started afresh)."""
        if self.started:
            raise RunError(
                f"{self.path} already holds a run; use --resume {self.path} to continue it "
                "or choose another --out"
            )
        for d in (self.path, self.checkpoints, self.plots):
            d.mkdir(parents=True, exist_ok=True)
        self.write_config(cfg)

    def write_config(self, cfg: Config, runtime: dict[str, Any] | None = None) -> None:
        """config.yaml; ``runtime`` (:meth:`vidnas.engine.runtime.Runtime.describe`)
        heads it as a comment, so a reader sees where the run ran (a resumed run
        writes its own)."""
        head = ""
        if runtime is not None:
            job = f"{runtime['world_size']} process(es)"
            if runtime.get("backend"):
                job += f", process group backend {runtime['backend']}"
            head = f"# ran on {runtime['device']} in {runtime['precision']}, {job}\n"
        atomic_write_text(self.config_path, head + dump_config(cfg))

    def load_config(self) -> Config:
        if not self.config_path.exists():
            raise RunError(f"{self.path} is not a run directory (no config.yaml)")
        return load_config(self.config_path)

    def load_last(self, kind: str) -> dict[str, Any]:
        """The state to resume from; a run that never checkpointed cannot be resumed."""
        if not self.started:
            raise RunError(
                f"{self.path}: nothing to resume (the run stopped before its first checkpoint); "
                "start it again"
            )
        return load_checkpoint(self.last_checkpoint, kind)

    # ------------------------------------------------------------------ outputs

    def write_metrics(self, rows: list[dict[str, Any]]) -> None:
        """Rewrite metrics.jsonl from the run's history (kept in the checkpoint), so a
        resumed run never duplicates or loses an epoch's line."""
        text = "".join(json.dumps(r) + "\n" for r in rows)
        atomic_write_text(self.metrics_path, text)

    def summary_writer(self, purge_step: int | None = None) -> Any:
        """A TensorBoard writer; on resume, events after ``purge_step`` are discarded."""
        # Imported here: TensorBoard takes about a second to import, and most
        # commands (and every rank but the first) never write events.
        from torch.utils.tensorboard import SummaryWriter

        return SummaryWriter(str(self.tb), purge_step=purge_step)


def open_run(
    kind: str,
    cfg: Config | None,
    out: str | Path | None,
    resume: str | Path | bool | None,
) -> tuple[RunDir, Config, dict[str, Any] | None]:
    """The run to work on, its config, and the state to resume from (None: a new run).

    ``resume`` is a run directory to continue with its own saved config; or ``True``:
    continue ``out`` if it holds a run, else start ``cfg`` there (what a pipeline of
    runs, like the demo, does after being stopped); or ``None``: start ``cfg`` in
    ``out`` (a new timestamped directory if ``out`` is ``None``).

    Under torchrun, rank 0 opens or creates the directory (its timestamped name is
    its own choice) and the other ranks then open the same one and read the same
    state.
    """
    d = distributed.setup()
    if not d.enabled or d.main:
        run, cfg, state = _open_run(kind, cfg, out, resume)
    if d.enabled:
        found = (str(run.path), state is not None) if d.main else None
        path, resuming = d.broadcast_object(found)
        if not d.main:
            run = RunDir(path)
            cfg, state = run.load_config(), run.load_last(kind) if resuming else None
    return _resumed_precision(run, cfg, state)


def with_precision(cfg: Config, precision: str) -> Config:
    """A copy of ``cfg`` with ``runtime.precision`` set (``cfg`` is unchanged)."""
    if cfg.runtime.precision == precision:
        return cfg
    return dataclasses.replace(cfg, runtime=dataclasses.replace(cfg.runtime, precision=precision))


def _resumed_precision(
    run: RunDir, cfg: Config, state: dict[str, Any] | None
) -> tuple[RunDir, Config, dict[str, Any] | None]:
    """A resumed ``runtime.precision=auto`` run computes in the precision it chose when
    it started (its checkpoint's ``precision``), not in what a new measurement says."""
    saved = state.get("precision") if state is not None else None
    if saved is not None and cfg.runtime.precision == "auto":
        cfg = with_precision(cfg, saved)
    return run, cfg, state


def _open_run(
    kind: str,
    cfg: Config | None,
    out: str | Path | None,
    resume: str | Path | bool | None,
) -> tuple[RunDir, Config, dict[str, Any] | None]:
    if resume is True:
        if out is None:
            raise RunError(f"resuming a {kind} run needs its directory")
        run = RunDir(out)
        if run.started:
            return run, run.load_config(), run.load_last(kind)
        resume = None
    if resume not in (None, False):
        run = RunDir(resume)  # type: ignore[arg-type]
        cfg = run.load_config()
        return run, cfg, run.load_last(kind)
    if cfg is None:
        raise RunError(f"a {kind} run needs a config, or a run directory to resume")
    run = RunDir(out or default_run_dir(kind))
    run.create(cfg)
    return run, cfg, None
