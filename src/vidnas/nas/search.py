"""The bilevel search loop (paper section 3.3 and appendix A.1, docs/design.md "The search").

Warm-up epochs train only the weights w, so that every path starts with
trained weights. After them every step is first order, as in DARTS:
update w on a train batch (gradient of L_train), then alpha and beta on a
validate batch (gradient of L_val = CE + lambda * log_k(C), eq. 5). The
validate split is a third the size of the train split, so its batches are
cycled within an epoch.

All run state (weights, alpha, beta, both optimizers and their fp16 gradient
scalers, the learning-rate schedule's position, RNG state, epoch and step,
partial-epoch sums, metric history, the resolved precision) lives in one
checkpoint, written atomically every ``search.checkpoint_every`` steps and at
every epoch end. Data order and augmentation are pure functions of (seed, epoch,
index), so a run killed at any point and resumed from its last checkpoint ends
exactly as an uninterrupted one.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from vidnas.config import Config, config_from_dict, to_dict
from vidnas.data import ClipDataset, load_index, make_loader, search_split
from vidnas.data.index import VideoIndex, VideoRecord
from vidnas.data.sampling import derive_seed
from vidnas.engine.checkpoint import atomic_write_text
from vidnas.engine.loop import RunLoop, load_scaler
from vidnas.engine.rundir import RunDir, open_run
from vidnas.engine.runtime import cosine_lr, grad_scaler, prepare_module
from vidnas.engine.steps import (
    evaluate_single_view,
    recalibrate_bn,
    weight_optimizer,
    weight_step,
)
from vidnas.errors import DataError
from vidnas.models.cost import network_cost
from vidnas.models.network import build_network
from vidnas.models.space import SearchSpace
from vidnas.nas.architect import Architect, cost_term
from vidnas.nas.decisiveness import (
    HELDOUT_SE,
    Decisiveness,
    choice_effects,
    confirmed,
    heldout_gain,
)
from vidnas.nas.decisiveness import measure as measure_decisiveness
from vidnas.nas.derive import Derivation, derive_from
from vidnas.nas.supernet import Supernet, inherit_weights
from vidnas.report import plots
from vidnas.report.markdown import heldout_line, write_search_report

__all__ = ["KIND", "SearchLoop", "SearchResult", "cost_term", "load_supernet", "run_search"]

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

    @property
    def decisiveness_record(self) -> dict[str, Any]:
        """``arch.json``'s record of the decision (:func:`decisiveness_record`)."""
        return self.derivation.spec.meta["x-search"]["decisiveness"]


def search_space(cfg: Config) -> SearchSpace:
    """The space a config searches: its space, restricted to the searched dimensions."""
    space = SearchSpace.from_config(cfg.space)
    space.check_input(cfg.input)
    return space.restrict(cfg.search.dimensions)


def _entropy(probs: list[torch.Tensor]) -> float:
    """Mean entropy (nats) of the softmax distributions that have a choice to make."""
    ents = [
        -(p * p.clamp_min(1e-30).log()).sum(-1).reshape(-1)
        for p in (q.double() for q in probs)
        if p.numel() and p.shape[-1] > 1
    ]
    return float(torch.cat(ents).mean()) if ents else 0.0


class SearchLoop(RunLoop):
    """One search run, resumable; :func:`run_search` is the entry point."""

    kind = KIND
    sum_keys = _SUMS

    def __init__(self, cfg: Config, run: RunDir, progress: bool = True) -> None:
        super().__init__(cfg, run, progress)
        cfg = self.cfg  # with runtime.precision resolved
        self.space = search_space(cfg)

        index = load_index(cfg, "train")
        self.classes = list(index.classes)
        with self.dist.main_first():  # rank 0 writes the split that the others read
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
        self.net: Supernet = prepare_module(net, cfg.runtime, self.device)
        # The weights under DDP (in a job); a sampled path leaves most ops unused.
        self.ddp = self.data_parallel(
            self.net, cfg.search.mode == "sampled", ignore=self.net.arch_parameters()
        )
        s = cfg.search
        self.weights = list(self.net.weight_parameters())
        self.w_opt = weight_optimizer(
            s.w_optimizer, self.weights, s.w_lr, s.w_momentum, s.w_weight_decay
        )
        self.architect = Architect(
            self.net, cfg, self.dist, grad_scaler(self.precision, self.device)
        )
        self.arch_history: list[dict[str, Any]] = []
        self.summary: dict[str, Any] = {}

    # ------------------------------------------------------------------ state

    def state_dict(self) -> dict[str, Any]:
        return {
            **super().state_dict(),
            "config": to_dict(self.cfg),
            "classes": self.classes,
            "model": self.net.state_dict(),
            "w_opt": self.w_opt.state_dict(),
            "a_opt": self.architect.state_dict(),
            "a_scaler": self.architect.scaler.state_dict(),
            "arch_history": self.arch_history,
            "summary": self.summary,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.check_classes(state, self.classes)
        super().load_state_dict(state)
        self.net.load_state_dict(state["model"])
        self.w_opt.load_state_dict(state["w_opt"])
        self.architect.load_state_dict(state["a_opt"])
        load_scaler(self.architect.scaler, state.get("a_scaler"))
        self.arch_history = list(state["arch_history"])
        self.summary = dict(state["summary"])

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
            dist=self.dist,
        )

    def _lr(self) -> float:
        s = self.cfg.search
        step = self.epoch * self.steps_per_epoch + self.step
        warmup = round(s.w_lr_warmup_epochs * self.steps_per_epoch)
        return cosine_lr(step, self.total_steps, s.w_lr, s.w_lr_min, warmup)

    def _val_batches(self, epoch: int, start: int) -> Iterator[dict[str, Any]]:
        """Validate batches for the architecture steps, cycled: a pure function of
        (epoch, step), so a resumed epoch draws the same batches."""
        per_cycle = len(self._loader("val", epoch=0))
        cycle, offset = divmod(start, per_cycle)
        while True:
            yield from self._loader("val", epoch=epoch * 100_003 + cycle, start=offset)
            cycle, offset = cycle + 1, 0

    # ------------------------------------------------------------------ steps

    def _forward(self, step: str, k: int) -> Callable[[torch.Tensor], torch.Tensor]:
        """The supernet's forward for one step: relaxed, or in ``sampled`` mode with
        ``k`` ops per layer drawn by a generator seeded by (seed, step kind, epoch,
        step), so that a resumed run (and every rank) draws what the uninterrupted one
        drew. The weight step runs under DDP; the architecture step does not
        (:mod:`vidnas.nas.architect`)."""
        net = self.ddp if step == "weight-step" else self.net
        if self.cfg.search.mode == "relaxed":
            return net
        seed = derive_seed("op-sample", self.cfg.seed, step, self.epoch, self.step)
        sample = self.net.sample_ops(k, torch.Generator().manual_seed(seed))
        return functools.partial(net, op_sample=sample)

    # ------------------------------------------------------------------ epochs

    def run_epoch(self) -> None:
        cfg, e = self.cfg, self.epoch
        searching = e >= cfg.search.warmup_epochs
        phase = "search" if searching else "warm-up"
        started = time.perf_counter()
        loader = self._loader("train", epoch=e, start=self.step)
        lr = self._lr()
        val_iter = self._val_batches(e, self.step) if searching else None
        bar = self.bar(self.steps_per_epoch, f"epoch {e + 1}/{cfg.search.epochs} {phase}")
        dec = None  # the decisiveness the progress bar shows
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
                    self.check("weight-step"),
                    self.dist,
                    self.scaler,
                )
                a_loss, a_ce, a_n = 0.0, 0.0, 0
                if val_iter is not None:
                    vbatch = next(val_iter)
                    self.bad.update(vbatch["failed"])
                    if vbatch["label"].numel() or self.dist.enabled:
                        a_loss, a_ce, a_n = self.architect.step(
                            self._forward("architecture-step", 2),
                            vbatch,
                            self.device,
                            self.check("architecture-step"),
                        )
                self.add(
                    train_loss=loss,
                    train_correct=correct,
                    train_count=n,
                    arch_loss=a_loss,
                    arch_ce=a_ce,
                    arch_count=a_n,
                )
                self.step += 1
                bar.update(1)
                postfix = {
                    "loss": f"{self.mean('train_loss', 'train_count'):.3f}",
                    "acc": f"{self.mean('train_correct', 'train_count'):.3f}",
                    "GMACs": f"{self.net.expected_macs().item() / 1e9:.3f}",
                }
                # A budget-mode derivation takes about a second in the paper's space:
                # the bar refreshes its decisiveness every 10 steps there.
                every = 1 if cfg.search.budget_gmacs is None else 10
                if searching and self.progress and (dec is None or self.step % every == 0):
                    dec = self._decisiveness(self.derive())
                if searching and self.progress and dec is not None:
                    postfix["op_win_min"] = _fmt_prob(dec.op_win_min)
                    postfix["width_win_min"] = _fmt_prob(dec.width_win_min)
                bar.set_postfix(postfix)
                started = self.checkpoint_due(cfg.search.checkpoint_every, len(loader), started)
        finally:
            bar.close()
        self.elapsed += time.perf_counter() - started
        self._end_epoch(lr, phase)

    def _end_epoch(self, lr: float, phase: str) -> None:
        started = time.perf_counter()
        e, cfg = self.epoch, self.cfg
        self.sync_buffers(self.net)
        evals = {}
        for name in ("val", "inference"):
            # Shuffled by a fixed seed: the same clips every epoch, and with
            # ``eval_batches`` a sample of every class, not the first class of a
            # list sorted by label (which once read as 0.000 accuracy).
            loader = self._loader(f"{name}_eval", epoch=0)
            evals[name] = evaluate_single_view(
                self.net,
                loader,
                self.device,
                cfg.runtime,
                cfg.search.eval_batches,
                on_batch=lambda b: self.bad.update(b["failed"]),
                dist=self.dist,
            )
        self.merge_bad_videos()
        d = self.derive("searched")
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
            "train_clips": int(s["train_count"]),
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
            **self.architect.epoch_grad_stats(),
        }
        if cfg.search.budget_gmacs is not None:  # what the unconstrained argmax would cost
            row["argmax_gmacs"] = network_cost(derive_from(self.net).spec).macs / 1e9
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
        self.reset_epoch()
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

    def derive(self, name: str | None = None) -> Derivation:
        """The architecture alpha and beta select now; in budget mode the most probable
        one within ``search.budget_tolerance`` of the budget."""
        s = self.cfg.search
        return derive_from(self.net, name, s.budget_gmacs, s.budget_tolerance)

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
        self.write_scalars("search", self.history[-1])
        if not self.dist.main:
            return
        atomic_write_text(self.run.path / "arch_history.json", json.dumps(self.arch_history))
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
        d = self.derive("searched")
        self.decisiveness = self._decisiveness(d)
        heldout = heldout_gain(
            self.net,
            self._loader("inference_eval", epoch=0),
            self._loader("val_eval", epoch=0),
            self.device,
            cfg.runtime,
            self.dist,
        )
        effects = choice_effects(
            self.net,
            self.decisiveness.choices,
            self._loader("inference_eval", epoch=0),
            self.device,
            cfg.runtime,
            self.dist,
        )
        meta = {
            "x-search": {
                "run_dir": str(self.run.path),
                "path": list(d.path),
                "layers": [list(x) for x in d.layers],
                "path_prob": d.path_prob,
                "classes": self.classes,
                "decisiveness": decisiveness_record(
                    self.decisiveness, self.history, heldout, effects
                ),
            }
        }
        spec = d.spec.replace(meta=meta)
        d = Derivation(spec, d.path, d.layers, d.path_prob)
        if self.dist.main:
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
                self.dist,
            )
            res = evaluate_single_view(
                net,
                self._loader("inference_eval", epoch=0, shuffle=False),
                self.device,
                cfg.runtime,
                dist=self.dist,
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
                "precision": self.precision,
                "bad_videos": self.bad.count,
            }
            self.done = True
            self.save()
        if not self.dist.main:
            return d
        plots.plot_arch(spec, self.run.plots / "arch.png", title="searched architecture")
        record = meta["x-search"]["decisiveness"]
        write_search_report(self.run, cfg, spec, self.history, self.summary, self.bad, record)
        if self.decisiveness.undecided:
            log.warning(
                "the search left %d choice(s) undecided (below p = %.2f): the derived network "
                "is arbitrary there; see %s",
                len(self.decisiveness.undecided),
                self.decisiveness.threshold,
                self.run.report_path,
            )
        unsettled = record["unsettled_epochs"]
        if unsettled:
            log.warning(
                "the derived network changed after epoch(s) %s, within the last %d: it has not "
                "settled (shuffled-label searches reach p >= 0.6 too; docs/results.md)",
                ", ".join(map(str, unsettled)),
                SETTLED_EPOCHS,
            )
        if not record["confirmed"]:
            log.warning(
                "%s; its choices may fit the validate split rather than the task (%s)",
                heldout_line(record),
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
            self.close()
        return SearchResult(self.run.path, d, self.history, self.summary, self.decisiveness)


SETTLED_EPOCHS = 3  # the test of a settled search: the same network this long


def unsettled_epochs(history: list[dict[str, Any]], last: int = SETTLED_EPOCHS) -> list[int]:
    """The epochs among the last ``last`` after which the derived network changed
    (none: it has been the same for the last ``last`` epochs)."""
    return (
        [r["epoch"] for r in history[-(last - 1) :] if r.get("derived_changed")] if last > 1 else []
    )


def decisiveness_record(
    dec: Decisiveness,
    history: list[dict[str, Any]],
    heldout: dict[str, Any] | None = None,
    effects: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """What ``arch.json`` and the reports say of the decision: the probabilities;
    whether the derived network has been the same for the last ``SETTLED_EPOCHS``
    epochs; and whether the learned alpha and beta predict the inference split (never
    seen by an architecture step) better than uniform ones, each calibrated
    (``heldout``, from :func:`heldout_gain`; its ``validate`` part, the uncalibrated
    gain on the split the steps fitted, is kept for comparison). The verdict is
    *decided* only when all three hold: shuffled-label searches on the demo's
    benchmark reached the probabilities, and some settled too, but none predicted
    held-out videos better once calibrated (docs/design.md, "Search decisiveness").
    ``effects``: :func:`choice_effects` of the undecided choices."""
    unsettled = unsettled_epochs(history)
    settled = not unsettled and len(history) >= SETTLED_EPOCHS
    heldout = dict(heldout) if heldout else None
    validate = heldout.pop("validate", None) if heldout else None
    ok = confirmed(heldout)
    if dec.undecided:
        verdict = "undecided"
    elif not settled:
        verdict = "not settled"
    elif not ok:
        verdict = "not confirmed"
    else:
        verdict = "decided"
    return {
        **dec.to_dict(),
        "settle_epochs": SETTLED_EPOCHS,
        "unsettled_epochs": unsettled,
        "settled": settled,
        "heldout": heldout,
        "validate_gain": validate,
        "heldout_se": HELDOUT_SE,
        "confirmed": ok,
        "verdict": verdict,
        "undecided_effects": effects or [],
    }


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
