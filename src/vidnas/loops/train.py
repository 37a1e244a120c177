"""Retraining a derived or built-in network (appendix A.1, docs/design.md "Retraining").

By default the paper's SGD (``train.optimizer``: or AdamW) with momentum 0.9,
weight decay 4e-5 and a cosine learning rate from 0.1
to 1e-4, dropout 0.5 before the classifier, the paper's clip sampling and
augmentation; all in ``cfg.train`` and ``cfg.data``. The paper retrains on the
whole training list and reports on the official test list; to pick the best
epoch without looking at the test list, ``train.holdout`` (default 0.1) keeps
a stratified part of the training list for per-epoch validation
(``train.holdout=0`` validates on the test list, as PySlowFast and MMAction2 do).

``init_from`` starts from the supernet's weights of the derived path (the
paper's "weight information"), the path that the search's ``arch.json``
records; since those BatchNorm statistics were gathered on mixtures of paths,
they are re-estimated for the derived network before it is first evaluated.

Checkpoints follow the search's contract (one object, atomic, exact resume, the
resolved precision and the fp16 gradient scaler's state included) and are
self-describing (:mod:`vidnas.models.model_file`): ``checkpoints/last.pt`` every
``train.checkpoint_every`` steps and each epoch, ``checkpoints/best.pt`` at
the best validation accuracy.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from vidnas.config import Config
from vidnas.data import ClipDataset, holdout_split, load_index, make_loader
from vidnas.data.sampling import derive_seed
from vidnas.engine.checkpoint import save_checkpoint
from vidnas.engine.loop import RunLoop
from vidnas.engine.rundir import RunDir, open_run
from vidnas.engine.steps import (
    evaluate_single_view,
    recalibrate_bn,
    weight_optimizer,
    weight_step,
)
from vidnas.errors import ConfigError, DataError
from vidnas.models.archs import resolve_arch
from vidnas.models.cost import network_cost
from vidnas.models.model_file import KIND, model_payload
from vidnas.models.network import VidNet, build_network
from vidnas.models.space import SearchSpace
from vidnas.models.spec import ArchSpec
from vidnas.nas.supernet import inherit_weights, load_supernet
from vidnas.report import plots
from vidnas.report.markdown import write_train_report

log = logging.getLogger("vidnas.train")


@dataclass
class TrainResult:
    run_dir: Path
    best: Path
    last: Path
    history: list[dict[str, Any]]
    summary: dict[str, Any]


def resolve_train_arch(arch: str | Path | ArchSpec, cfg: Config, num_classes: int) -> ArchSpec:
    """The spec to train: a built-in, an arch.json or a spec, set to the config's input
    shape and the dataset's classes (its layers stay as they are)."""
    if isinstance(arch, ArchSpec):
        spec = arch
    else:
        spec = resolve_arch(arch, SearchSpace.from_config(cfg.space))
    if spec.input != tuple(cfg.input):
        log.info(
            "training %s at input %s (the spec says %s)",
            spec.name or arch,
            "x".join(map(str, cfg.input)),
            "x".join(map(str, spec.input)),
        )
    return spec.replace(input=tuple(cfg.input), num_classes=num_classes)


def inherit_from_search(net: VidNet, search_run: str | Path) -> dict[str, Any]:
    """Copy the supernet weights of ``search_run`` at the network's position in the
    space into ``net``.

    The position is the one the network's spec records (``meta.x-search``: a derived
    network, or one placed in the space as ``vidnas bench`` places its population);
    a spec without one must be the network that search derived (same stem, widths,
    strides and ops), whose position its ``arch.json`` records. The input size may
    differ, since conv weights do not depend on it. With a different class count the
    classifier keeps its fresh initialisation.
    """
    run = RunDir(search_run)
    if not run.arch_path.exists():
        raise ConfigError(f"--init-from {run.path}: no arch.json (did the search finish?)")
    theirs = ArchSpec.load(run.arch_path)
    mine = net.spec
    found = mine.meta.get("x-search", {})
    if "path" not in found or "layers" not in found:
        found = theirs.meta.get("x-search", {})
        if "path" not in found or "layers" not in found:
            raise ConfigError(f"--init-from {run.path}: its arch.json records no supernet path")
        if (mine.stem_width, mine.stem_stride, mine.stages) != (
            theirs.stem_width,
            theirs.stem_stride,
            theirs.stages,
        ):
            raise ConfigError(
                f"--init-from {run.path}: the architecture to train differs from the one "
                "that search derives; train its arch.json"
            )
    path, layers = found["path"], found["layers"]
    supernet, _, _ = load_supernet(run.path)
    same_classes = mine.num_classes == theirs.num_classes
    inherit_weights(net, supernet, path, layers, classifier=same_classes)
    if not same_classes:
        log.info(
            "the search had %d classes, this dataset %d: the classifier starts fresh",
            theirs.num_classes,
            mine.num_classes,
        )
    return {"search_run": str(run.path), "path": list(path), "classifier": same_classes}


class TrainLoop(RunLoop):
    """One retraining run, resumable; :func:`run_train` is the entry point."""

    kind = KIND
    sum_keys = ("loss", "correct", "count")

    def __init__(
        self, cfg: Config, run: RunDir, spec: ArchSpec | str | Path, progress: bool = True
    ) -> None:
        super().__init__(cfg, run, progress)
        index = load_index(cfg, "train")
        self.classes = list(index.classes)
        t = cfg.train
        if t.holdout > 0:
            with self.dist.main_first():  # rank 0 writes the split that the others read
                train_idx, val_idx = holdout_split(index, t.holdout, cfg.seed, run.split_path)
            self.val_source = f"holdout {t.holdout:g} of the training list"
        else:
            train_idx, val_idx = index, load_index(cfg, "test")
            self.val_source = "the test list"
        self.train_set, self.val_set = train_idx, val_idx
        self.data = {
            "train": ClipDataset(train_idx, cfg, "train"),
            "train_eval": ClipDataset(train_idx, cfg, "eval"),
            "val": ClipDataset(val_idx, cfg, "eval"),
        }
        self.spec = resolve_train_arch(spec, cfg, len(self.classes))
        torch.manual_seed(cfg.seed)
        self.net = self.rt.module(build_network(self.spec, t.dropout, t.residual_init))
        # The same weights on every rank, then each rank its own dropout masks: with one
        # seed every rank would drop the same units of its part of the global batch.
        torch.manual_seed(derive_seed("training", cfg.seed, self.dist.rank))
        self.ddp = self.data_parallel(self.net)
        self.params = list(self.net.parameters())
        self.opt = weight_optimizer(t.optimizer, self.params, t.lr, t.momentum, t.weight_decay)
        self.steps_per_epoch = len(self._loader("train", 0))
        if self.steps_per_epoch == 0:
            raise DataError(
                f"the {len(train_idx.records)} training videos are fewer than one batch "
                f"(train.batch_size={t.batch_size})"
            )
        self.total_steps = self.steps_per_epoch * t.epochs
        self.best: dict[str, Any] = {"val_acc": -1.0, "epoch": 0}
        self.init: dict[str, Any] = {}
        cost = network_cost(self.spec)
        self.gmacs, self.n_params = cost.macs / 1e9, cost.params

    # ------------------------------------------------------------------ state

    @property
    def best_path(self) -> Path:
        return self.run.best_checkpoint

    def _metrics(self) -> dict[str, Any]:
        last = self.history[-1] if self.history else {}
        return {
            "epoch": self.epoch,
            "val_acc": last.get("val_acc"),
            "val_loss": last.get("val_loss"),
            "best_val_acc": self.best["val_acc"],
            "best_epoch": self.best["epoch"],
            "val_source": self.val_source,
            "gmacs": self.gmacs,
            "params": self.n_params,
        }

    def state_dict(self) -> dict[str, Any]:
        return {
            **super().state_dict(),
            **model_payload(self.net, self.classes, self.resolved_config(), self._metrics()),
            "opt": self.opt.state_dict(),
            "best": dict(self.best),
            "init": self.init,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.check_classes(state, self.classes)
        super().load_state_dict(state)
        self.net.load_state_dict(state["model"])
        self.opt.load_state_dict(state["opt"])
        self.best = dict(state["best"])
        self.init = dict(state["init"])

    # ------------------------------------------------------------------ loop

    def _loader(self, name: str, epoch: int, start: int = 0) -> Any:
        return make_loader(
            self.data[name],
            self.cfg.train.batch_size,
            shuffle=name == "train",
            seed=self.cfg.seed,
            epoch=epoch,
            start_batch=start,
            num_workers=self.cfg.data.num_workers,
            drop_last=name == "train",
            dist=self.dist,
        )

    def _validate(self) -> dict[str, float]:
        self.sync_buffers(self.net)
        res = evaluate_single_view(
            self.net,
            self._loader("val", 0),
            self.rt,
            on_batch=lambda b: self.bad.update(b["failed"]),
        )
        self.merge_bad_videos()
        return res

    def initialise(self, init_from: str | Path | None) -> None:
        """Fresh run: optionally inherit the search's weights, then the first checkpoint."""
        if self.dist.main:
            self.spec.save(self.run.arch_path)
        if init_from is not None:
            started = time.perf_counter()
            self.init = inherit_from_search(self.net, init_from)
            self.init["bn_clips"] = recalibrate_bn(
                self.net,
                self._loader("train_eval", 0),
                self.rt,
                self.cfg.train.bn_recalibration_batches,
            )
            res = self._validate()
            self.init.update(val_acc=res["acc"], val_loss=res["loss"])
            self.elapsed += time.perf_counter() - started
            log.info("inherited the search's weights: val top-1 %.3f before retraining", res["acc"])
        self.save()

    def _lr(self) -> float:
        t = self.cfg.train
        return self.scheduled_lr(t.lr, t.lr_min, t.lr_warmup_epochs)

    def run_epoch(self) -> None:
        t, e = self.cfg.train, self.epoch
        started = time.perf_counter()
        loader = self._loader("train", e, self.step)
        self.net.train()
        bar = self.bar(self.steps_per_epoch, f"epoch {e + 1}/{t.epochs}")
        lr = self._lr()
        try:
            for batch in loader:
                self.bad.update(batch["failed"])
                lr = self._lr()
                loss, correct, n = weight_step(
                    self.ddp,
                    self.params,
                    self.opt,
                    batch,
                    self.rt,
                    lr,
                    t.grad_clip,
                    self.check("training"),
                    self.scaler,
                )
                self.add(loss=loss, correct=correct, count=n)
                self.step += 1
                bar.update(1)
                bar.set_postfix(
                    loss=f"{self.mean('loss', 'count'):.3f}",
                    acc=f"{self.mean('correct', 'count'):.3f}",
                    lr=f"{lr:.2e}",
                )
                started = self.checkpoint_due(t.checkpoint_every, len(loader), started)
        finally:
            bar.close()
        res = self._validate()
        self.elapsed += time.perf_counter() - started
        row = {
            "epoch": e + 1,
            "lr": lr,
            "train_loss": self.mean("loss", "count"),
            "train_acc": self.mean("correct", "count"),
            "train_clips": int(self.sums["count"]),
            "val_loss": res["loss"],
            "val_acc": res["acc"],
            "bad_videos": self.bad.count,
            "time_s": round(self.elapsed, 2),
        }
        self.history.append(row)
        self.reset_epoch()
        improved = res["acc"] > self.best["val_acc"]
        if improved:
            self.best = {"val_acc": res["acc"], "epoch": e + 1}
        self.done = self.epoch >= t.epochs
        self.save()
        if improved and self.dist.main:
            payload = model_payload(self.net, self.classes, self.resolved_config(), self._metrics())
            save_checkpoint(self.best_path, payload, kind=KIND)
        self._write_outputs()
        log.info(
            "epoch %d/%d: train %.3f/%.3f  val %.3f/%.3f (loss/acc)%s",
            e + 1,
            t.epochs,
            row["train_loss"],
            row["train_acc"],
            row["val_loss"],
            row["val_acc"],
            "  best" if improved else "",
        )

    def _write_outputs(self) -> None:
        self.write_scalars("train", self.history[-1])
        if self.dist.main and (self.plots_due() or self.done):
            plots.plot_curves(
                self.history,
                self.run.plots / "train_curves.png",
                sets=("train", "val"),
                title="retraining",
            )

    def summary(self) -> dict[str, Any]:
        return {
            "arch": self.spec.name,
            "gmacs": self.gmacs,
            "params": self.n_params,
            "input": list(self.cfg.input),
            "epochs": self.epoch,
            "best_val_acc": self.best["val_acc"],
            "best_epoch": self.best["epoch"],
            "last_val_acc": self.history[-1]["val_acc"] if self.history else None,
            "val_source": self.val_source,
            "train_seconds": round(self.elapsed, 1),
            "precision": self.rt.precision,
            "world_size": self.dist.world,
            "init": self.init,
            "bad_videos": self.bad.count,
        }

    def run_all(self) -> TrainResult:
        try:
            while self.epoch < self.cfg.train.epochs:
                self.run_epoch()
        finally:
            self.close()
        summary = self.summary()
        if not self.dist.main:
            return TrainResult(
                self.run.path, self.best_path, self.run.last_checkpoint, self.history, summary
            )
        plots.plot_arch(self.spec, self.run.plots / "arch.png")
        write_train_report(self.run, self.cfg, self.spec, self.history, summary)
        return TrainResult(
            self.run.path, self.best_path, self.run.last_checkpoint, self.history, summary
        )


def run_train(
    arch: str | Path | ArchSpec | None = None,
    cfg: Config | None = None,
    out: str | Path | None = None,
    resume: str | Path | bool | None = None,
    init_from: str | Path | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train ``arch`` (a built-in name, an arch.json or a spec); with ``resume``,
    continue the run in that directory exactly where its last checkpoint left it;
    with ``resume=True``, continue ``out`` if it holds a run, else start there."""
    if resume in (None, False, True) and arch is None:
        raise ConfigError("train needs an architecture (a built-in name or an arch.json)")
    run, cfg, state = open_run(KIND, cfg, out, resume)
    spec = ArchSpec.load(run.arch_path) if state is not None else arch
    loop = TrainLoop(cfg, run, spec, progress)
    if state is None:
        loop.initialise(init_from)
    else:
        loop.load_state_dict(state)
        log.info("resuming %s at epoch %d, step %d", run.path, loop.epoch + 1, loop.step)
    return loop.run_all()
