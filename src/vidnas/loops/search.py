"""The bilevel search loop (paper section 3.3 and appendix A.1, docs/design.md "The search").

Warm-up epochs train only the weights w. After them every step is first order,
as in DARTS: w on a train batch (L_train), then alpha and beta on a validate
batch (L_val = CE + cost penalty, eq. 5). This module only schedules; the data
are :class:`SearchData`'s, the architecture step the :class:`Architect`'s, the
per-epoch record :mod:`~vidnas.loops.search_meter`'s, the end of the search
:mod:`~vidnas.loops.search_finish`'s.

All run state (weights, alpha, beta, both optimizers and their gradient scalers,
the schedule's position, RNG state, epoch and step, partial sums, history, the
resolved precision) lives in one checkpoint, written atomically every
``search.checkpoint_every`` steps and at every epoch end: a run killed at any
point and resumed ends exactly as an uninterrupted one.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from vidnas.config import Config, to_dict
from vidnas.data.sampling import derive_seed
from vidnas.engine.checkpoint import atomic_write_text
from vidnas.engine.loop import RunLoop, load_scaler
from vidnas.engine.rundir import RunDir, open_run
from vidnas.engine.steps import weight_optimizer, weight_step
from vidnas.loops import search_finish as finishing
from vidnas.loops import search_meter as meter
from vidnas.loops.search_data import SearchData
from vidnas.loops.search_finish import SearchResult
from vidnas.models.space import SearchSpace, search_space
from vidnas.nas.architect import Architect
from vidnas.nas.decisiveness import Decisiveness, measure_supernet
from vidnas.nas.derive import Derivation, derive_from
from vidnas.nas.penalty import CostPenalty
from vidnas.nas.schedule import SearchSchedule
from vidnas.nas.supernet import CHECKPOINT_KIND as KIND
from vidnas.nas.supernet import Supernet
from vidnas.nas.verdict import Verdict
from vidnas.report import plots
from vidnas.report.markdown import write_search_report

__all__ = ["KIND", "SearchLoop", "SearchResult", "run_search"]

log = logging.getLogger("vidnas.search")


class SearchLoop(RunLoop):
    """One search run, resumable; :func:`run_search` is the entry point. ``space``:
    ``cfg``'s searched space, if it was built already."""

    kind = KIND
    sum_keys = meter.SUM_KEYS

    def __init__(
        self, cfg: Config, run: RunDir, progress: bool = True, space: SearchSpace | None = None
    ) -> None:
        super().__init__(cfg, run, progress)
        s = cfg.search
        self.space = space if space is not None else search_space(cfg)
        self.data = SearchData(cfg, run.split_path, self.dist)
        self.classes = self.data.classes
        self.steps_per_epoch = self.data.steps_per_epoch()
        self.total_steps = self.steps_per_epoch * s.epochs
        layers = sum(st.max_layers for st in self.space.stages)
        self.schedule = SearchSchedule.resolve(s, self.steps_per_epoch, layers)
        torch.manual_seed(cfg.seed)
        checkpointing = cfg.runtime.activation_checkpointing
        residual = self.schedule.residual_init
        net = Supernet(self.space, cfg.input, len(self.classes), residual, checkpointing)
        self.net: Supernet = self.rt.module(net)
        # The weights under DDP (in a job); a sampled path leaves most ops unused.
        self.ddp = self.data_parallel(
            self.net, s.mode == "sampled", ignore=self.net.arch_parameters()
        )
        self.weights = list(self.net.weight_parameters())
        self.w_opt = weight_optimizer(
            s.w_optimizer, self.weights, s.w_lr, s.w_momentum, s.w_weight_decay
        )
        penalty = CostPenalty.from_config(s)
        self.architect = Architect(self.net, s, penalty, self.rt, self.schedule.arch_lr)
        self.arch_history: list[dict[str, Any]] = []
        self.summary: dict[str, Any] = {}

    # ------------------------------------------------------------------ state

    def state_dict(self) -> dict[str, Any]:
        return {
            **super().state_dict(),
            "config": to_dict(self.resolved_config()),
            "classes": self.classes,
            "model": self.net.state_dict(),
            "w_opt": self.w_opt.state_dict(),
            "a_opt": self.architect.state_dict(),
            "arch_history": self.arch_history,
            "summary": self.summary,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.check_classes(state, self.classes)
        super().load_state_dict(state)
        self.net.load_state_dict(state["model"])
        self.w_opt.load_state_dict(state["w_opt"])
        self.architect.load_state_dict(state["a_opt"])
        load_scaler(self.architect.scaler, state.get("a_scaler"))  # where checkpoints kept it
        self.arch_history = list(state["arch_history"])
        self.summary = dict(state["summary"])

    # ------------------------------------------------------------------ steps

    def _lr(self) -> float:
        s = self.cfg.search
        return self.scheduled_lr(s.w_lr, s.w_lr_min, s.w_lr_warmup_epochs)

    def _forward(self, step: str, k: int) -> Callable[[torch.Tensor], torch.Tensor]:
        """One step's forward: relaxed, or (``sampled``) ``k`` ops a layer drawn by a
        generator seeded by (seed, step kind, epoch, step), as every rank and a resumed
        run draw. The weight step runs under DDP, the architecture step does not."""
        net = self.ddp if step == "weight-step" else self.net
        if self.cfg.search.mode == "relaxed":
            return net
        seed = derive_seed("op-sample", self.cfg.seed, step, self.epoch, self.step)
        sample = self.net.sample_ops(k, torch.Generator().manual_seed(seed))
        return functools.partial(net, op_sample=sample)

    def _steps(self, batch: dict[str, Any], val_batch: dict[str, Any] | None) -> None:
        """One weight step on ``batch``, then (after warm-up) one architecture step on
        ``val_batch``; their figures go to the epoch's sums."""
        s = self.cfg.search
        self.bad.update(batch["failed"])
        loss, correct, n = weight_step(
            self._forward("weight-step", 1),
            self.weights,
            self.w_opt,
            batch,
            self.rt,
            self._lr(),
            s.grad_clip,
            self.check("weight-step"),
            self.scaler,
        )
        a_loss, a_ce, a_n = 0.0, 0.0, 0
        if val_batch is not None:
            self.bad.update(val_batch["failed"])
            if val_batch["label"].numel() or self.dist.enabled:
                fwd, check = self._forward("architecture-step", 2), self.check("architecture-step")
                a_loss, a_ce, a_n = self.architect.step(fwd, val_batch, check)
        weights_part = {"train_loss": loss, "train_correct": correct, "train_count": n}
        self.add(**weights_part, arch_loss=a_loss, arch_ce=a_ce, arch_count=a_n)
        self.step += 1

    # ------------------------------------------------------------------ epochs

    def run_epoch(self) -> None:
        cfg, e = self.cfg, self.epoch
        searching = e >= self.schedule.warmup_epochs
        phase = "search" if searching else "warm-up"
        started = time.perf_counter()
        loader = self.data.loader("train", epoch=e, start=self.step)
        lr = self._lr()
        val_iter = self.data.val_batches(e, self.step) if searching else None
        bar = self.bar(self.steps_per_epoch, f"epoch {e + 1}/{cfg.search.epochs} {phase}")
        # A budget-mode derivation takes about a second in the paper's space: the bar
        # refreshes its decisiveness every 10 steps there.
        every = 1 if cfg.search.budget_gmacs is None else 10
        dec = None  # the decisiveness the progress bar shows
        try:
            for batch in loader:
                lr = self._lr()
                self._steps(batch, next(val_iter) if val_iter is not None else None)
                bar.update(1)
                if searching and self.progress and (dec is None or self.step % every == 0):
                    dec = self.decisiveness(self.derive())
                bar.set_postfix(meter.postfix(self.sums, self.net, dec))
                started = self.checkpoint_due(cfg.search.checkpoint_every, len(loader), started)
        finally:
            bar.close()
        self.elapsed += time.perf_counter() - started
        self._end_epoch(lr, phase)

    def _end_epoch(self, lr: float, phase: str) -> None:
        started = time.perf_counter()
        s = self.cfg.search
        self.sync_buffers(self.net)
        evals = self.data.evaluate(self.net, self.rt, s.eval_batches, self.bad.update)
        self.merge_bad_videos()
        d = self.derive("searched")
        argmax = derive_from(self.net) if s.budget_gmacs is not None else None
        previous = self.history[-1]["arch"] if self.history else None
        row = {
            "epoch": self.epoch + 1,
            "phase": phase,
            "lr": lr,
            **meter.training_part(self.sums),
            **meter.evaluation_part(evals),
            **meter.architecture_part(self.net, d, self.decisiveness(d), previous, argmax),
            "bad_videos": self.bad.count,
            **self.architect.epoch_grad_stats(),
        }
        self.history.append(row)
        self.arch_history.append(meter.arch_snapshot(self.epoch + 1, self.net))
        self.reset_epoch()
        self.elapsed += time.perf_counter() - started
        row["time_s"] = round(self.elapsed, 2)
        self.save()
        self.write_scalars("search", row)
        if self.dist.main:
            atomic_write_text(self.run.path / "arch_history.json", json.dumps(self.arch_history))
            if self.plots_due():
                self._plot()
        log.info(meter.epoch_line(row, s.epochs))

    def _plot(self) -> None:
        warmup = self.schedule.warmup_epochs
        plots.plot_search(self.run.plots, self.history, self.arch_history, self.space, warmup)

    def derive(self, name: str | None = None) -> Derivation:
        """What alpha and beta select now (in budget mode, within the budget)."""
        s = self.cfg.search
        return derive_from(self.net, name, s.budget_gmacs, s.budget_tolerance)

    def decisiveness(self, d: Derivation) -> Decisiveness:
        return measure_supernet(self.net, d.path, self.cfg.search.decided_threshold)

    # ------------------------------------------------------------------ end

    def finish(self) -> tuple[Derivation, Verdict]:
        """Derive, measure the verdict, write ``arch.json``, evaluate the derived network
        with inherited weights, and write the report; once: a finished run reads them
        back from its ``arch.json``."""
        if self.done and self.run.arch_path.exists():
            return finishing.read_back(self.run.arch_path)
        d = self.derive("searched")
        threshold = self.cfg.search.decided_threshold
        verdict = finishing.measure_verdict(
            self.net, d, self.data, self.rt, threshold, self.history
        )
        spec = finishing.searched_spec(
            d, verdict, self.run.path, self.classes, self.rt, self.schedule.to_dict()
        )
        d = Derivation(spec, d.path, d.layers, d.path_prob)
        if self.dist.main:
            spec.save(self.run.arch_path)
        if not self.done:
            started = time.perf_counter()
            bn = self.cfg.train.bn_recalibration_batches
            evaluated = finishing.evaluate_derived(spec, d, self.net, self.data, self.rt, bn)
            self.elapsed += time.perf_counter() - started
            self.summary = {
                "arch": str(self.run.arch_path),
                **evaluated,
                "search_seconds": round(self.elapsed, 1),
                "schedule": self.schedule.to_dict(),
                **self.rt.describe(),  # device, precision, world size, backend
                "bad_videos": self.bad.count,
            }
            self.done = True
            self.save()
        if self.dist.main:
            self._plot()
            plots.plot_arch(spec, self.run.plots / "arch.png", title="searched architecture")
            write_search_report(
                self.run, self.cfg, spec, self.history, self.summary, self.bad, verdict
            )
            finishing.warn_if_not_decided(verdict, self.run.report_path)
        return d, verdict

    def run_all(self) -> SearchResult:
        try:
            if not self.done:
                while self.epoch < self.cfg.search.epochs:
                    self.run_epoch()
            d, verdict = self.finish()
        finally:
            self.close()
        return SearchResult(self.run.path, d, self.history, self.summary, verdict)


def run_search(
    cfg: Config | None = None,
    out: str | Path | None = None,
    resume: str | Path | bool | None = None,
    progress: bool = True,
) -> SearchResult:
    """Search an architecture; with ``resume``, continue the run in that directory
    from its last checkpoint (its own config is used); with ``resume=True``, continue
    ``out`` if it holds a run, else start there."""
    space = search_space(cfg) if cfg is not None else None  # refused before a directory is made
    run, run_cfg, state = open_run(KIND, cfg, out, resume)
    loop = SearchLoop(run_cfg, run, progress, space if run_cfg is cfg else None)
    if state is None:
        loop.save()  # a run is resumable from its first moment
    else:
        loop.load_state_dict(state)
        log.info("resuming %s at epoch %d, step %d", run.path, loop.epoch + 1, loop.step)
    return loop.run_all()
