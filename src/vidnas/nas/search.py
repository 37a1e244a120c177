"""The bilevel search loop (paper section 3.3 and appendix A.1, docs/design.md "The search").

Warm-up epochs train only the weights w, so that every path starts with
trained weights. After them every step is first order, as in DARTS:
update w on a train batch (gradient of L_train), then alpha and beta on a
validate batch (gradient of L_val = CE + lambda * log_k(C), eq. 5). The
validate split is a third the size of the train split, so its batches are
cycled within an epoch.

All run state (weights, alpha, beta, both optimizers, the learning-rate
schedule's position, RNG state, epoch and step, partial-epoch sums, metric
history) lives in one checkpoint, written atomically every
``search.checkpoint_every`` steps and at every epoch end. Data order and
augmentation are pure functions of (seed, epoch, index), so a run killed at any
point and resumed from its last checkpoint ends exactly as an uninterrupted
one.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from vidnas.config import Config, config_from_dict, to_dict
from vidnas.data import BadVideoLog, ClipDataset, load_index, make_loader, search_split
from vidnas.data.index import VideoIndex, VideoRecord
from vidnas.data.sampling import derive_seed
from vidnas.engine.checkpoint import atomic_write_text, save_checkpoint
from vidnas.engine.rundir import RunDir, open_run
from vidnas.engine.runtime import (
    autocast,
    cosine_lr,
    prepare_input,
    prepare_module,
    resolve_device,
    rng_state,
    set_rng_state,
    setup_threads,
)
from vidnas.engine.steps import (
    check_finite,
    evaluate_single_view,
    recalibrate_bn,
    weight_step,
)
from vidnas.errors import DataError, RunError
from vidnas.models.cost import network_cost
from vidnas.models.network import build_network
from vidnas.models.space import SearchSpace
from vidnas.nas.decisiveness import Decisiveness
from vidnas.nas.decisiveness import measure as measure_decisiveness
from vidnas.nas.derive import Derivation, derive_from
from vidnas.nas.supernet import Supernet, inherit_weights
from vidnas.report import plots
from vidnas.report.markdown import write_search_report

log = logging.getLogger("vidnas.search")

KIND = "search"  # the kind of checkpoint a search writes

_SUMS = ("train_loss", "train_correct", "train_count", "arch_loss", "arch_ce", "arch_count")


@dataclass
class SearchResult:
    run_dir: Path
    derivation: Derivation
    history: list[dict[str, Any]]
    summary: dict[str, Any]
    decisiveness: Decisiveness


def search_space(cfg: Config) -> SearchSpace:
    """The space a config searches: its space, restricted to the searched dimensions."""
    space = SearchSpace.from_config(cfg.space)
    space.check_input(cfg.input)
    return space.restrict(cfg.search.dimensions)


def cost_term(gmacs: torch.Tensor, cfg: Config) -> torch.Tensor:
    """lambda * log_k(C) (eq. 5); in budget mode lambda * |log_k(C / budget)|, which pulls
    the expected cost towards the budget from either side."""
    s = cfg.search
    if s.budget_gmacs is not None:
        return s.cost_lambda * torch.abs(torch.log(gmacs / s.budget_gmacs)) / math.log(s.cost_base)
    return s.cost_lambda * torch.log(gmacs) / math.log(s.cost_base)


def _entropy(probs: list[torch.Tensor]) -> float:
    """Mean entropy (nats) of the softmax distributions that have a choice to make."""
    ents = [
        -(p * p.clamp_min(1e-30).log()).sum(-1).reshape(-1)
        for p in (q.double() for q in probs)
        if p.numel() and p.shape[-1] > 1
    ]
    return float(torch.cat(ents).mean()) if ents else 0.0


class SearchLoop:
    """One search run, resumable; :func:`run_search` is the entry point."""

    def __init__(self, cfg: Config, run: RunDir, progress: bool = True) -> None:
        self.cfg = cfg
        self.run = run
        self.progress = progress
        setup_threads(cfg.runtime)
        self.device = resolve_device(cfg.runtime)
        self.space = search_space(cfg)

        index = load_index(cfg, "train")
        self.classes = list(index.classes)
        self.train_set, self.val_set, self.inf_set = search_split(index, cfg, run.split_path)
        if cfg.search.shuffle_labels:
            self.train_set, self.val_set, self.inf_set = (
                _shuffled_labels(part, cfg.seed, name)
                for part, name in (
                    (self.train_set, "train"),
                    (self.val_set, "validate"),
                    (self.inf_set, "inference"),
                )
            )
        for name, part in (
            ("train", self.train_set),
            ("validate", self.val_set),
            ("inference", self.inf_set),
        ):
            if not part.records:
                raise DataError(f"the search's {name} split is empty: the dataset is too small")
        self.data = {
            "train": ClipDataset(self.train_set, cfg, "train"),
            "val": ClipDataset(self.val_set, cfg, "train"),
            "train_eval": ClipDataset(self.train_set, cfg, "eval"),
            "val_eval": ClipDataset(self.val_set, cfg, "eval"),
            "inference_eval": ClipDataset(self.inf_set, cfg, "eval"),
        }
        self.steps_per_epoch = len(self._loader("train", epoch=0))
        if self.steps_per_epoch == 0:
            raise DataError(
                f"the search's train split has {len(self.train_set.records)} videos, fewer than "
                f"one batch (search.batch_size={cfg.search.batch_size})"
            )
        self.total_steps = self.steps_per_epoch * cfg.search.epochs

        torch.manual_seed(cfg.seed)
        net = Supernet(
            self.space,
            cfg.input,
            len(self.classes),
            cfg.search.residual_init,
            cfg.runtime.activation_checkpointing,
        )
        self.net = prepare_module(net, cfg.runtime, self.device)
        s = cfg.search
        self.weights = list(self.net.weight_parameters())
        self.w_opt = torch.optim.SGD(
            self.weights,
            lr=s.w_lr,
            momentum=s.w_momentum,
            weight_decay=s.w_weight_decay,
        )
        self.a_opt = torch.optim.Adam(
            self.net.arch_parameters(),
            lr=s.arch_lr,
            betas=s.arch_betas,
            weight_decay=s.arch_weight_decay,
        )
        self.bad = BadVideoLog()
        self.epoch = 0
        self.step = 0
        self.sums = dict.fromkeys(_SUMS, 0.0)
        self.history: list[dict[str, Any]] = []
        self.arch_history: list[dict[str, Any]] = []
        self.elapsed = 0.0
        self.done = False
        self.summary: dict[str, Any] = {}
        self.writer: Any = None

    # ------------------------------------------------------------------ state

    def state_dict(self) -> dict[str, Any]:
        return {
            "config": to_dict(self.cfg),
            "classes": self.classes,
            "epoch": self.epoch,
            "step": self.step,
            "model": self.net.state_dict(),
            "w_opt": self.w_opt.state_dict(),
            "a_opt": self.a_opt.state_dict(),
            "rng": rng_state(),
            "sums": dict(self.sums),
            "history": self.history,
            "arch_history": self.arch_history,
            "bad_videos": self.bad.state_dict(),
            "elapsed": self.elapsed,
            "done": self.done,
            "summary": self.summary,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state["classes"] != self.classes:
            raise RunError("the dataset's classes changed since this run started")
        self.net.load_state_dict(state["model"])
        self.w_opt.load_state_dict(state["w_opt"])
        self.a_opt.load_state_dict(state["a_opt"])
        set_rng_state(state["rng"])
        self.epoch, self.step = state["epoch"], state["step"]
        self.sums = dict(state["sums"])
        self.history = list(state["history"])
        self.arch_history = list(state["arch_history"])
        self.bad.load_state_dict(state["bad_videos"])
        self.elapsed = state["elapsed"]
        self.done = state["done"]
        self.summary = dict(state["summary"])

    def save(self) -> None:
        save_checkpoint(self.run.last_checkpoint, self.state_dict(), kind=KIND)

    # ------------------------------------------------------------------ data

    def _loader(self, name: str, epoch: int, start: int = 0, shuffle: bool = True) -> Any:
        return make_loader(
            self.data[name],
            self.cfg.search.batch_size,
            shuffle=shuffle,
            seed=self.cfg.seed + (1 if name == "val" else 0),
            epoch=epoch,
            start_batch=start,
            num_workers=self.cfg.data.num_workers,
            drop_last=name == "train",
        )

    def _lr(self) -> float:
        s = self.cfg.search
        step = self.epoch * self.steps_per_epoch + self.step
        return cosine_lr(step, self.total_steps, s.w_lr, s.w_lr_min)

    def _val_batches(self, epoch: int, start: int) -> Iterator[dict[str, Any]]:
        """Validate batches for the architecture steps, cycled: a pure function of
        (epoch, step), so a resumed epoch draws the same batches."""
        per_cycle = len(self._loader("val", epoch=0))
        cycle, offset = divmod(start, per_cycle)
        while True:
            yield from self._loader("val", epoch=epoch * 100_003 + cycle, start=offset)
            cycle, offset = cycle + 1, 0

    # ------------------------------------------------------------------ steps

    def _check(self, what: str) -> Any:
        return lambda loss: check_finite(
            loss, what, self.epoch, self.step, self.run.last_checkpoint
        )

    def _forward(self, step: str, k: int) -> Callable[[torch.Tensor], torch.Tensor]:
        """The supernet's forward for one step: relaxed, or in ``sampled`` mode with
        ``k`` ops per layer drawn by a generator seeded by (seed, step kind, epoch,
        step), so that a resumed run draws what the uninterrupted one drew."""
        if self.cfg.search.mode == "relaxed":
            return self.net
        seed = derive_seed("op-sample", self.cfg.seed, step, self.epoch, self.step)
        sample = self.net.sample_ops(k, torch.Generator().manual_seed(seed))
        return functools.partial(self.net, op_sample=sample)

    def _arch_step(self, batch: dict[str, Any]) -> None:
        if batch["label"].numel() == 0:
            return
        x = prepare_input(batch["clip"], self.cfg.runtime, self.device)
        y = batch["label"].to(self.device)
        for p in self.weights:  # the architecture step needs no weight gradients
            p.requires_grad_(False)
        try:
            with autocast(self.cfg.runtime, self.device):
                logits = self._forward("architecture-step", 2)(x)
            ce = nn.functional.cross_entropy(logits.float(), y)
            loss = ce + cost_term(self.net.expected_macs() / 1e9, self.cfg).float()
            self._check("architecture-step")(loss)
            self.a_opt.zero_grad(set_to_none=True)
            loss.backward()
            self.a_opt.step()
        finally:
            for p in self.weights:
                p.requires_grad_(True)
        n = y.numel()
        self.sums["arch_loss"] += loss.item() * n
        self.sums["arch_ce"] += ce.item() * n
        self.sums["arch_count"] += n

    # ------------------------------------------------------------------ epochs

    def run_epoch(self) -> None:
        cfg, e = self.cfg, self.epoch
        searching = e >= cfg.search.warmup_epochs
        phase = "search" if searching else "warm-up"
        started = time.perf_counter()
        loader = self._loader("train", epoch=e, start=self.step)
        lr = self._lr()
        val_iter = self._val_batches(e, self.step) if searching else None
        bar = tqdm(
            total=self.steps_per_epoch,
            initial=self.step,
            disable=not self.progress,
            desc=f"epoch {e + 1}/{cfg.search.epochs} {phase}",
            leave=False,
            dynamic_ncols=True,
        )
        try:
            for batch in loader:
                self.bad.update(batch["failed"])
                lr = self._lr()
                loss, correct, n = weight_step(
                    self._forward("weight-step", 1),
                    self.weights,
                    self.w_opt,
                    batch,
                    self.device,
                    cfg.runtime,
                    lr,
                    cfg.search.grad_clip,
                    self._check("weight-step"),
                )
                self.sums["train_loss"] += loss
                self.sums["train_correct"] += correct
                self.sums["train_count"] += n
                if val_iter is not None:
                    vbatch = next(val_iter)
                    self.bad.update(vbatch["failed"])
                    self._arch_step(vbatch)
                self.step += 1
                bar.update(1)
                n = max(self.sums["train_count"], 1)
                postfix = {
                    "loss": f"{self.sums['train_loss'] / n:.3f}",
                    "acc": f"{self.sums['train_correct'] / n:.3f}",
                    "GMACs": f"{self.net.expected_macs().item() / 1e9:.3f}",
                }
                if searching and self.progress:
                    dec = self._decisiveness(derive_from(self.net))
                    postfix["op_win_min"] = _fmt_prob(dec.op_win_min)
                    postfix["width_win_min"] = _fmt_prob(dec.width_win_min)
                bar.set_postfix(postfix)
                if self.step % cfg.search.checkpoint_every == 0 and self.step < len(loader):
                    self.elapsed += time.perf_counter() - started
                    started = time.perf_counter()
                    self.save()
        finally:
            bar.close()
        self.elapsed += time.perf_counter() - started
        self._end_epoch(lr, phase)

    def _end_epoch(self, lr: float, phase: str) -> None:
        started = time.perf_counter()
        e, cfg = self.epoch, self.cfg
        evals = {}
        for name in ("val", "inference"):
            loader = self._loader(f"{name}_eval", epoch=0, shuffle=False)
            evals[name] = evaluate_single_view(
                self.net,
                loader,
                self.device,
                cfg.runtime,
                cfg.search.eval_batches,
                on_batch=lambda b: self.bad.update(b["failed"]),
            )
        d = derive_from(self.net, name="searched")
        cost = network_cost(d.spec)
        with torch.no_grad():
            op_probs = [p.cpu() for p in self.net.op_probs()]
            path_probs = [p.cpu() for p in self.net.path_probs()]
            expected = self.net.expected_macs().item()
        s = self.sums
        row = {
            "epoch": e + 1,
            "phase": phase,
            "lr": lr,
            "train_loss": s["train_loss"] / max(s["train_count"], 1),
            "train_acc": s["train_correct"] / max(s["train_count"], 1),
            "arch_step_loss": s["arch_loss"] / s["arch_count"] if s["arch_count"] else None,
            "val_loss": evals["val"]["loss"],
            "val_acc": evals["val"]["acc"],
            "inference_loss": evals["inference"]["loss"],
            "inference_acc": evals["inference"]["acc"],
            "expected_gmacs": expected / 1e9,
            "derived_gmacs": cost.macs / 1e9,
            "derived_params": cost.params,
            "path_prob": d.path_prob,
            "alpha_entropy": _entropy(op_probs),
            "beta_entropy": _entropy(path_probs),
            "arch": {
                "widths": [st.width for st in d.spec.stages],
                "ops": [list(st.ops) for st in d.spec.stages],
            },
            "bad_videos": self.bad.count,
        }
        dec = self._decisiveness(d, op_probs, path_probs)
        previous = self.history[-1]["arch"] if self.history else None
        row.update(
            {
                "op_win": list(dec.op_win_mean),
                "op_win_min": dec.op_win_min,
                "width_win": list(dec.width_win),
                "width_win_min": dec.width_win_min,
                "undecided": len(dec.undecided),
                "derived_changed": previous is not None and previous != row["arch"],
            }
        )
        self.history.append(row)
        self.arch_history.append(_arch_snapshot(e + 1, op_probs, path_probs))
        self.epoch += 1
        self.step = 0
        self.sums = dict.fromkeys(_SUMS, 0.0)
        self.elapsed += time.perf_counter() - started
        row["time_s"] = round(self.elapsed, 2)
        self.save()
        self._write_outputs()
        log.info(
            "epoch %d/%d %s: train %.3f/%.3f  val %.3f/%.3f  inference %.3f/%.3f "
            "(loss/acc)  expected %.4f GMACs  derived %.4f GMACs%s  "
            "winning op >= %s, winning width >= %s",
            e + 1,
            cfg.search.epochs,
            phase,
            row["train_loss"],
            row["train_acc"],
            row["val_loss"],
            row["val_acc"],
            row["inference_loss"],
            row["inference_acc"],
            row["expected_gmacs"],
            row["derived_gmacs"],
            " (changed)" if row["derived_changed"] else "",
            _fmt_prob(dec.op_win_min),
            _fmt_prob(dec.width_win_min),
        )

    def _decisiveness(
        self,
        d: Derivation,
        op_probs: list[torch.Tensor] | None = None,
        path_probs: list[torch.Tensor] | None = None,
    ) -> Decisiveness:
        with torch.no_grad():
            return measure_decisiveness(
                self.space,
                d.path,
                op_probs if op_probs is not None else self.net.op_probs(),
                path_probs if path_probs is not None else self.net.path_probs(),
                self.cfg.search.decided_threshold,
            )

    def _write_outputs(self) -> None:
        self.run.write_metrics(self.history)
        atomic_write_text(self.run.path / "arch_history.json", json.dumps(self.arch_history))
        if self.writer is None:
            self.writer = self.run.summary_writer(purge_step=len(self.history))
        row = self.history[-1]
        for k, v in row.items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                self.writer.add_scalar(f"search/{k}", v, row["epoch"])
        self.writer.flush()
        plots.plot_curves(
            self.history,
            self.run.plots / "search_curves.png",
            warmup_epochs=self.cfg.search.warmup_epochs,
            title="search",
        )
        plots.plot_arch_params(
            self.arch_history,
            [st.widths for st in self.space.stages],
            self.space.ops,
            self.run.plots / "arch_params.png",
        )

    # ------------------------------------------------------------------ end

    def finish(self) -> Derivation:
        """Derive, evaluate the derived network with inherited weights, write outputs."""
        cfg = self.cfg
        d = derive_from(self.net, name="searched")
        self.decisiveness = self._decisiveness(d)
        meta = {
            "x-search": {
                "run_dir": str(self.run.path),
                "path": list(d.path),
                "layers": [list(x) for x in d.layers],
                "path_prob": d.path_prob,
                "classes": self.classes,
                "decisiveness": self.decisiveness.to_dict(),
            }
        }
        spec = d.spec.replace(meta=meta)
        d = Derivation(spec, d.path, d.layers, d.path_prob)
        spec.save(self.run.arch_path)
        if not self.done:
            started = time.perf_counter()
            net = prepare_module(build_network(spec), cfg.runtime, self.device)
            inherit_weights(net, self.net, d.path, d.layers)
            bn = recalibrate_bn(
                net,
                self._loader("train_eval", epoch=0),
                self.device,
                cfg.runtime,
                cfg.train.bn_recalibration_batches,
            )
            res = evaluate_single_view(
                net,
                self._loader("inference_eval", epoch=0, shuffle=False),
                self.device,
                cfg.runtime,
            )
            cost = network_cost(spec)
            self.elapsed += time.perf_counter() - started
            self.summary = {
                "arch": str(self.run.arch_path),
                "gmacs": cost.macs / 1e9,
                "params": cost.params,
                "input": list(cfg.input),
                "classes": len(self.classes),
                "chance": 1 / len(self.classes),
                "derived_inference_acc": res["acc"],
                "derived_inference_loss": res["loss"],
                "derived_inference_videos": res["count"],
                "bn_recalibration_clips": bn,
                "search_seconds": round(self.elapsed, 1),
                "bad_videos": self.bad.count,
            }
            self.done = True
            self.save()
        plots.plot_arch(spec, self.run.plots / "arch.png", title="searched architecture")
        write_search_report(
            self.run, cfg, spec, self.history, self.summary, self.bad, self.decisiveness.to_dict()
        )
        if self.decisiveness.undecided:
            log.warning(
                "the search left %d choice(s) undecided (below p = %.2f): the derived network "
                "is arbitrary there; see %s",
                len(self.decisiveness.undecided),
                self.decisiveness.threshold,
                self.run.report_path,
            )
        return d

    def run_all(self) -> SearchResult:
        try:
            if not self.done:
                while self.epoch < self.cfg.search.epochs:
                    self.run_epoch()
            d = self.finish()
        finally:
            if self.writer is not None:
                self.writer.close()
        return SearchResult(self.run.path, d, self.history, self.summary, self.decisiveness)


def _fmt_prob(p: float | None) -> str:
    return "-" if p is None else f"{p:.2f}"


def _shuffled_labels(part: VideoIndex, seed: int, name: str) -> VideoIndex:
    """``part`` with its labels permuted by a generator seeded by (seed, part): the
    null control of ``search.shuffle_labels``."""
    gen = torch.Generator().manual_seed(derive_seed("shuffle-labels", seed, name))
    order = torch.randperm(len(part.records), generator=gen).tolist()
    labels = [part.records[i].label for i in order]
    return part.subset([VideoRecord(r.path, y) for r, y in zip(part.records, labels)])


def _arch_snapshot(
    epoch: int, op_probs: list[torch.Tensor], path_probs: list[torch.Tensor]
) -> dict[str, Any]:
    """Per stage: reach probability of each width, reach-weighted mean op probabilities."""
    reach_all, ops_all = [], []
    r = torch.ones(1, dtype=torch.float64)
    for a, p in zip(op_probs, path_probs):
        r = r @ p.double()
        reach_all.append(r.tolist())
        if a.shape[1] == 0:
            ops_all.append([])
        else:
            ops_all.append((r[:, None] * a.double().mean(1)).sum(0).tolist())
    return {
        "epoch": epoch,
        "reach": reach_all,
        "ops": ops_all,
        "alpha": [a.tolist() for a in op_probs],
        "beta": [p.tolist() for p in path_probs],
    }


def load_supernet(run_dir: str | Path) -> tuple[Supernet, Config, list[str]]:
    """The supernet of a search run's last checkpoint, with the run's config and classes."""
    state = RunDir(run_dir).load_last(KIND)
    cfg = config_from_dict(state["config"], validate=False)
    supernet = Supernet(search_space(cfg), cfg.input, len(state["classes"]))
    supernet.load_state_dict(state["model"])
    return supernet, cfg, list(state["classes"])


def run_search(
    cfg: Config | None = None,
    out: str | Path | None = None,
    resume: str | Path | bool | None = None,
    progress: bool = True,
) -> SearchResult:
    """Search an architecture; with ``resume``, continue the run in that directory
    from its last checkpoint (its own config is used); with ``resume=True``, continue
    ``out`` if it holds a run, else start there."""
    if cfg is not None:
        search_space(cfg)  # refuse a bad space before any directory is made
    run, cfg, state = open_run(KIND, cfg, out, resume)
    loop = SearchLoop(cfg, run, progress)
    if state is None:
        loop.save()  # a run is resumable from its first moment
    else:
        loop.load_state_dict(state)
        log.info("resuming %s at epoch %d, step %d", run.path, loop.epoch + 1, loop.step)
    return loop.run_all()
