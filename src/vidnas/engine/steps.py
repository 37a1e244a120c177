"""The steps that search, retraining and testing share: one SGD step on
cross-entropy, single-view evaluation over a loader, BatchNorm re-estimation."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

from vidnas.config import RuntimeConfig
from vidnas.engine.runtime import autocast, prepare_input
from vidnas.errors import NonFiniteLoss


@torch.no_grad()
def evaluate_single_view(
    model: nn.Module,
    loader: Iterable[dict[str, Any]],
    device: torch.device,
    runtime: RuntimeConfig,
    max_batches: int | None = None,
    on_batch: Any = None,
) -> dict[str, float]:
    """Mean cross-entropy and top-1 accuracy over a loader of one clip per video, in
    eval mode (the per-epoch figure; the reported test is multi-view,
    :mod:`vidnas.apps.evaluate`)."""
    was_training = model.training
    model.eval()
    loss_sum, correct, count = 0.0, 0, 0
    for batch in itertools.islice(loader, max_batches):
        if on_batch is not None:
            on_batch(batch)
        if batch["label"].numel() == 0:
            continue
        x = prepare_input(batch["clip"], runtime, device)
        y = batch["label"].to(device)
        with autocast(runtime, device):
            logits = model(x)
        loss_sum += nn.functional.cross_entropy(logits.float(), y, reduction="sum").item()
        correct += (logits.argmax(1) == y).sum().item()
        count += y.numel()
    model.train(was_training)
    if count == 0:
        return {"loss": float("nan"), "acc": float("nan"), "count": 0}
    return {"loss": loss_sum / count, "acc": correct / count, "count": count}


@torch.no_grad()
def recalibrate_bn(
    model: nn.Module,
    loader: Iterable[dict[str, Any]],
    device: torch.device,
    runtime: RuntimeConfig,
    batches: int,
) -> int:
    """Re-estimate BatchNorm running statistics from training batches.

    A network cut out of the supernet inherits statistics gathered on mixtures of
    paths, which do not describe its own activations; a cumulative average over a
    few batches in train mode fixes that (as single-path NAS methods do).
    Returns the number of clips seen.
    """
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not bns or batches <= 0:
        return 0
    saved = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average
    was_training = model.training
    model.train()
    seen = 0
    for batch in itertools.islice(loader, batches):
        if batch["label"].numel() == 0:
            continue
        with autocast(runtime, device):
            model(prepare_input(batch["clip"], runtime, device))
        seen += batch["label"].numel()
    for m, mom in zip(bns, saved):
        m.momentum = mom
    model.train(was_training)
    return seen


def check_finite(loss: torch.Tensor, what: str, epoch: int, step: int, checkpoint: Any) -> None:
    """Stop on a NaN/inf loss before it reaches the weights or a checkpoint."""
    if not torch.isfinite(loss):
        raise NonFiniteLoss(
            f"non-finite {what} loss ({loss.item()}) at epoch {epoch + 1}, step {step + 1}; "
            f"stopped, and the last good checkpoint {checkpoint} is kept"
        )


def weight_step(
    model: Callable[[torch.Tensor], torch.Tensor],
    params: list[nn.Parameter],
    opt: torch.optim.Optimizer,
    batch: dict[str, Any],
    device: torch.device,
    runtime: RuntimeConfig,
    lr: float,
    grad_clip: float | None,
    check: Any,
) -> tuple[float, int, int]:
    """One SGD step on cross-entropy; returns (summed loss, correct, clips). A batch
    whose every video was unreadable (0 clips) is no step at all."""
    if batch["label"].numel() == 0:
        return 0.0, 0, 0
    x = prepare_input(batch["clip"], runtime, device)
    y = batch["label"].to(device)
    for g in opt.param_groups:
        g["lr"] = lr
    with autocast(runtime, device):
        logits = model(x)
    loss = nn.functional.cross_entropy(logits.float(), y)
    check(loss)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if grad_clip:
        nn.utils.clip_grad_norm_(params, grad_clip)
    opt.step()
    n = y.numel()
    return loss.item() * n, int((logits.argmax(1) == y).sum().item()), n
