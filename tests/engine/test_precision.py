"""runtime.precision (issue 13): what ``auto`` resolves to, that a run resolves it once
and records it (a resumed run reuses it), and fp16 with gradient scalers whose state
goes through the checkpoint, so that resume stays exact."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import pytest
import torch
from torch.nn import functional as F

from tests.conftest import Killed, kill_after, tiny
from vidnas.config import ConfigError, RuntimeConfig
from vidnas.engine import runtime
from vidnas.engine.checkpoint import load_checkpoint
from vidnas.engine.rundir import open_run
from vidnas.engine.runtime import Runtime, grad_scaler, resolve_precision
from vidnas.loops.search import SearchLoop, run_search
from vidnas.loops.train import TrainLoop, run_train
from vidnas.models.spec import ArchSpec

CPU = torch.device("cpu")
FRESH_SCALER = torch.amp.GradScaler("cpu").state_dict()


def _cpu_fp16_conv3d() -> str | None:
    """Why fp16 autocast of Conv3d cannot run on this CPU, or None if it can."""
    try:
        with torch.autocast("cpu", dtype=torch.float16):
            y = F.conv3d(torch.ones(1, 2, 3, 3, 3), torch.ones(2, 2, 1, 1, 1, requires_grad=True))
        y.float().sum().backward()
    except RuntimeError as err:
        return f"this torch build has no CPU fp16 autocast of conv3d: {err}"
    return None


_NO_CPU_FP16 = _cpu_fp16_conv3d()
needs_cpu_fp16 = pytest.mark.skipif(_NO_CPU_FP16 is not None, reason=_NO_CPU_FP16 or "")


def _last(out: Path, kind: str) -> dict:
    return load_checkpoint(out / "checkpoints" / "last.pt", kind)


def test_a_bad_precision_names_the_key():
    with pytest.raises(ConfigError, match=r"runtime\.precision: expected one of 'auto', 'fp32'"):
        tiny(None, "runtime.precision=fp8")


def test_auto_on_a_cpu_measures_and_picks_fp32_or_bf16(caplog):
    caplog.set_level(logging.INFO, logger="vidnas.runtime")
    rng = torch.get_rng_state()
    choice = resolve_precision(RuntimeConfig(precision="auto"), CPU)
    assert choice in ("fp32", "bf16")
    assert torch.equal(torch.get_rng_state(), rng)  # the probe draws from its own generator
    [msg] = [r.getMessage() for r in caplog.records if "precision=auto" in r.getMessage()]
    assert "fp32" in msg and msg.endswith(f"using {choice}")


def _time_probe(monkeypatch: pytest.MonkeyPatch, fp32_s: float, bf16: float | Exception) -> list:
    """Make the probe take ``fp32_s`` seconds in fp32 and ``bf16`` times that under bf16
    autocast (or raise ``bf16``); returns the (dtype, give_up_after) it is asked for."""
    asked = []

    def probe(device, dtype, channels_last, give_up_after=None):
        asked.append((dtype, give_up_after))
        if dtype is None:
            return fp32_s
        if isinstance(bf16, Exception):
            raise bf16
        return bf16 * fp32_s

    monkeypatch.setattr(runtime, "_probe_seconds", probe)
    return asked


def _auto_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if "precision=auto" in r.getMessage()]


@pytest.mark.parametrize(
    ("fraction", "choice"), [(0.5, "bf16"), (0.9, "bf16"), (0.91, "fp32"), (2.0, "fp32")]
)
def test_auto_takes_bf16_when_it_needs_at_most_90_percent_of_fp32s_time(
    monkeypatch, caplog, fraction, choice
):
    caplog.set_level(logging.INFO, logger="vidnas.runtime")
    asked = _time_probe(monkeypatch, 0.01, fraction)
    assert resolve_precision(RuntimeConfig(precision="auto"), CPU) == choice
    # fp32 first; bf16 may stop timing once it is slower than fp32 was
    assert asked == [(None, None), (torch.bfloat16, 0.01)]
    [line] = _auto_lines(caplog)
    assert "10.0 ms in fp32" in line and f"{fraction * 10:.1f} ms under bf16" in line
    assert "<= 90% of fp32's time" in line and line.endswith(f"using {choice}")


def test_auto_falls_back_to_fp32_when_bf16_autocast_fails(monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger="vidnas.runtime")
    _time_probe(monkeypatch, 0.01, RuntimeError("no bf16 conv3d on this CPU\n(details)"))
    assert resolve_precision(RuntimeConfig(precision="auto"), CPU) == "fp32"
    [line] = _auto_lines(caplog)
    assert "bf16 autocast failed (no bf16 conv3d on this CPU)" in line
    assert line.endswith("using fp32")


@pytest.mark.parametrize(
    ("loop", "fraction", "choice"), [("train", 0.9, "bf16"), ("search", 0.91, "fp32")]
)
def test_a_run_with_auto_computes_in_what_the_probe_decided(
    tmp_path, data_root, monkeypatch, loop, fraction, choice
):
    asked = _time_probe(monkeypatch, 0.01, fraction)
    cfg = tiny(data_root, "runtime.device=cpu", "runtime.precision=auto")
    run, cfg, _ = open_run(loop, cfg, tmp_path / "run", None)
    if loop == "train":
        made = TrainLoop(cfg, run, "r2plus1d-baseline", progress=False)
    else:
        made = SearchLoop(cfg, run, progress=False)
    assert len(asked) == 2  # measured once
    assert made.rt.precision == choice
    assert made.resolved_config().runtime.precision == choice
    with torch.no_grad(), made.rt.autocast():
        logits = made.net(made.rt.input(torch.zeros(1, *cfg.input)))
    assert logits.dtype == (torch.bfloat16 if choice == "bf16" else torch.float32)


def test_explicit_precisions_are_kept_and_auto_on_cuda_needs_no_measurement(monkeypatch):
    def no_probe(*args):
        raise AssertionError("measured")

    monkeypatch.setattr(runtime, "_measure_precision", no_probe)
    for p in ("fp32", "bf16", "fp16"):
        assert resolve_precision(RuntimeConfig(precision=p), CPU) == p
    cuda = torch.device("cuda")  # only asked about, never used
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert resolve_precision(RuntimeConfig(precision="auto"), cuda) == "bf16"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert resolve_precision(RuntimeConfig(precision="auto"), cuda) == "fp16"


def test_a_runtime_refuses_an_unresolved_auto_and_only_fp16_scales():
    with pytest.raises(ValueError, match="resolve_precision"):
        Runtime(CPU, "auto")
    assert grad_scaler("fp16", CPU).is_enabled()
    assert not grad_scaler("bf16", CPU).is_enabled()
    assert not grad_scaler("fp32", CPU).is_enabled()


def test_auto_is_resolved_once_recorded_and_reused_on_resume(tmp_path, data_root, monkeypatch):
    calls = []

    def measured(cfg, device):
        calls.append(device)
        return "bf16"  # whatever this CPU would say: the point is that it is kept

    monkeypatch.setattr(runtime, "_measure_precision", measured)
    out = tmp_path / "run"
    asked = tiny(data_root, "runtime.device=cpu", "runtime.precision=auto")
    run, cfg, _ = open_run("train", asked, out, None)
    loop = TrainLoop(cfg, run, "r2plus1d-baseline", progress=False)
    assert calls == [CPU]
    assert loop.rt.precision == "bf16" and loop.resolved_config().runtime.precision == "bf16"
    assert loop.cfg is asked and asked.runtime.precision == "auto"  # left as asked
    assert not loop.scaler.is_enabled()
    loop.initialise(None)
    saved = _last(out, "train")
    assert saved["precision"] == "bf16"
    assert saved["config"]["runtime"]["precision"] == "bf16"
    assert "precision: auto" in run.config_path.read_text()  # config.yaml keeps what was asked

    def measured_again(*args):
        raise AssertionError("a resumed run measured again")

    monkeypatch.setattr(runtime, "_measure_precision", measured_again)
    run, cfg, state = open_run("train", None, None, out)
    assert cfg.runtime.precision == "bf16"
    loop = TrainLoop(cfg, run, ArchSpec.load(run.arch_path), progress=False)
    loop.load_state_dict(state)
    assert loop.rt.precision == "bf16" and calls == [CPU]


@pytest.mark.slow
@needs_cpu_fp16
def test_fp16_training_resumes_exactly_with_its_scaler(tmp_path, data_root, monkeypatch):
    over = (
        "runtime.device=cpu",
        "runtime.precision=fp16",
        "train.batch_size=2",
        "train.checkpoint_every=1",
    )
    cfg = tiny(data_root, *over)
    ref = run_train("r2plus1d-baseline", cfg, out=tmp_path / "ref", progress=False)
    assert ref.summary["precision"] == "fp16"
    for row in ref.history:
        assert math.isfinite(row["train_loss"]) and math.isfinite(row["val_loss"]), row

    kill_after(monkeypatch, TrainLoop, epoch=1, step=2)
    with pytest.raises(Killed):
        run_train("r2plus1d-baseline", cfg, out=tmp_path / "cut", progress=False)
    monkeypatch.undo()
    cut = _last(tmp_path / "cut", "train")
    assert (cut["epoch"], cut["step"]) == (1, 2)
    assert cut["scaler"] and cut["scaler"] != FRESH_SCALER  # there is scaler state to keep

    run_train(resume=tmp_path / "cut", progress=False)
    a, b = _last(tmp_path / "cut", "train"), _last(tmp_path / "ref", "train")
    # The scaler counts steps since its last overflow: a scaler started afresh on
    # resume would end with another count.
    assert a["scaler"] == b["scaler"]
    assert a["model"].keys() == b["model"].keys()
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in b["model"])


@pytest.mark.slow
@needs_cpu_fp16
def test_fp16_search_scales_both_steps_and_resumes_exactly(tmp_path, data_root, monkeypatch):
    over = (
        "runtime.device=cpu",
        "runtime.precision=fp16",
        "search.epochs=1",  # one epoch, searching: weight and architecture steps
        "search.warmup_epochs=0",
        "search.batch_size=2",
        "search.checkpoint_every=1",
        "search.eval_batches=1",
    )
    ref = run_search(tiny(data_root, *over), out=tmp_path / "ref", progress=False)
    assert ref.summary["precision"] == "fp16"
    for row in ref.history:
        assert math.isfinite(row["train_loss"]), row
    assert math.isfinite(ref.history[-1]["arch_step_loss"])

    kill_after(monkeypatch, SearchLoop, epoch=0, step=2)
    with pytest.raises(Killed):
        run_search(tiny(data_root, *over), out=tmp_path / "cut", progress=False)
    monkeypatch.undo()
    cut = _last(tmp_path / "cut", "search")
    assert (cut["epoch"], cut["step"]) == (0, 2)
    for scaler in (cut["scaler"], cut["a_opt"]["scaler"]):  # weight and architecture steps
        assert scaler and scaler != FRESH_SCALER

    run_search(resume=tmp_path / "cut", progress=False)
    a, b = _last(tmp_path / "cut", "search"), _last(tmp_path / "ref", "search")
    assert (a["scaler"], a["a_opt"]["scaler"]) == (b["scaler"], b["a_opt"]["scaler"])
    assert a["model"].keys() == b["model"].keys()
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in b["model"])
