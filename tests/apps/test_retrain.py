"""Retraining, multi-view testing, prediction, export and checkpoint safety (issue 5)."""

from __future__ import annotations

import json
import os
import pickle
import random
from pathlib import Path

import pytest
import torch

from tests.conftest import ASSETS, cli, kill_mid_epoch, tiny
from vidnas.apps.export import export
from vidnas.apps.predict import predict
from vidnas.engine.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from vidnas.loops.train import run_train
from vidnas.models.model_file import load_trained
from vidnas.models.spec import ArchSpec
from vidnas.nas.supernet import load_supernet

pytestmark = pytest.mark.slow


def test_training_writes_checkpoints_metrics_and_report(trained):
    out, res = trained
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]
    for name in (
        "arch.json",
        "report.md",
        "checkpoints/best.pt",
        "checkpoints/last.pt",
        "plots/train_curves.png",
        "plots/arch.png",
        "split.json",
    ):
        assert (out / name).is_file(), name
    assert any(p.name.startswith("events.out.tfevents") for p in (out / "tb").iterdir())
    assert res.summary["init"]["search_run"]
    assert 0 <= res.summary["init"]["val_acc"] <= 1


def test_init_from_copies_the_path_and_recomputes_batchnorm(tmp_path, data_root, finished_search):
    from vidnas.engine.rundir import RunDir
    from vidnas.loops.train import TrainLoop

    search_dir, sres = finished_search
    cfg = tiny(data_root, "runtime.channels_last=false")
    run = RunDir(tmp_path / "t")
    run.create(cfg)
    loop = TrainLoop(cfg, run, search_dir / "arch.json", progress=False)
    loop.initialise(search_dir)
    supernet, _, _ = load_supernet(search_dir)
    d = sres.derivation
    node = supernet.stages[-1].nodes[d.path[-1]]
    head = loop.net.stages[-1].transition
    assert torch.equal(head[0].weight, node.transitions[d.path[-2]][0].weight)
    # BatchNorm statistics were re-estimated, not copied from the supernet.
    assert not torch.equal(head[1].running_mean, node.transitions[d.path[-2]][1].running_mean)
    assert loop.init["bn_clips"] > 0


def test_init_from_refuses_another_architecture(tmp_path, data_root, finished_search):
    search_dir, _ = finished_search
    from vidnas.config import ConfigError

    with pytest.raises(ConfigError, match="differs from the one that search derives"):
        run_train(
            "r2plus1d-baseline",
            tiny(data_root),
            out=tmp_path / "x",
            init_from=search_dir,
            progress=False,
        )


@pytest.mark.parametrize("optimizer", ["sgd", "adamw"])
def test_train_baseline_from_the_cli_and_resume_after_sigkill(tmp_path, data_root, optimizer):
    out = tmp_path / "base"
    args = [
        "train",
        "r2plus1d-baseline",
        "--config",
        "tiny",
        "--out",
        str(out),
        "--no-progress",
        f"data.root={data_root}",
        "runtime.threads=1",
        "train.epochs=3",
        "train.batch_size=2",
        "train.checkpoint_every=1",
        f"train.optimizer={optimizer}",
    ]
    ref = cli(*[a if a != str(out) else str(tmp_path / "ref") for a in args])
    assert ref.returncode == 0, ref.stderr[-2000:]

    ckpt = out / "checkpoints" / "last.pt"
    killed_at, _, stderr = kill_mid_epoch(args, ckpt, "train")
    assert killed_at is not None, stderr[-2000:]
    res = cli("train", "--resume", str(out), "--no-progress")
    assert res.returncode == 0, res.stderr[-2000:]
    a = load_checkpoint(ckpt, "train")["model"]
    b = load_checkpoint(tmp_path / "ref" / "checkpoints" / "last.pt", "train")["model"]
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_30_view_test_writes_metrics_predictions_and_confusion(trained, tmp_path):
    _, res = trained
    r = cli("test", str(res.best), "--views", "10x3", "--out", str(tmp_path / "t"), "--no-progress")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "top-1" in r.stdout and "x 30" in r.stdout
    m = json.loads((tmp_path / "t" / "test_metrics.json").read_text())
    assert m["views"] == 30 and m["clips"] == 10 and m["crops"] == 3
    for key in (
        "top1",
        "top5",
        "mean_class_acc",
        "videos_tested",
        "videos_skipped",
        "gmacs_per_view",
        "params",
    ):
        assert key in m
    assert 0 <= m["top1"] <= m["top5"] <= 1
    lines = (tmp_path / "t" / "predictions.csv").read_text().splitlines()
    assert lines[0].startswith("path,label,prediction")
    assert len(lines) - 1 == m["videos_tested"]
    confusion = (tmp_path / "t" / "confusion.csv").read_text().splitlines()
    assert sum(int(v) for row in confusion[1:] for v in row.split(",")[1:]) == m["videos_tested"]
    assert (tmp_path / "t" / "confusion.png").stat().st_size > 0


def test_mean_over_splits(trained, tmp_path):
    _, res = trained
    r = cli("test", f"{res.best}:1", f"{res.last}:1", "--views", "1x1", "--no-progress")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "mean over 2 checkpoint/split pairs" in r.stdout


def test_predict_labels_a_real_clip_and_reports_a_bad_file(trained, tmp_path):
    _, res = trained
    bad = tmp_path / "broken.mp4"
    bad.write_text("this is not a video")
    r = cli(
        "predict",
        str(res.best),
        str(ASSETS / "test.avi"),
        str(bad),
        str(ASSETS / "demo.mp4"),
        "--views",
        "2x3",
    )
    assert r.returncode == 1
    classes = load_trained(res.best).classes
    blocks: dict[str, list[str]] = {}
    current = ""
    for line in r.stdout.splitlines():
        if line.startswith(" "):
            blocks[current].append(line.split("%", 1)[1].strip())
        else:
            current = Path(line).name
            blocks[current] = []
    assert list(blocks) == ["test.avi", "broken.mp4", "demo.mp4"]
    for name in ("test.avi", "demo.mp4"):
        assert len(blocks[name]) == min(5, len(classes))
        assert set(blocks[name]) <= set(classes)
    assert blocks["broken.mp4"] == []
    assert "broken.mp4" in r.stderr and "cannot read" in r.stderr
    preds = predict(res.best, [ASSETS / "test.avi"], views=(2, 3))
    assert preds[0].error is None
    if len(classes) <= 5:  # every class listed: the probabilities sum to 1
        assert sum(p for _, p in preds[0].top) == pytest.approx(1, abs=1e-5)


@pytest.mark.parametrize("fmt", ["onnx", "pt2", "torchscript"])
def test_exports_match_pytorch(trained, tmp_path, fmt):
    _, res = trained
    out = tmp_path / f"model.{fmt}"
    result = export(res.best, fmt, out)
    assert result.max_abs_diff is not None and result.max_abs_diff < 1e-4
    tm = load_trained(res.best)
    x = torch.randn(2, *tm.spec.input)
    with torch.no_grad():
        ref = tm.net(x)
    if fmt == "onnx":
        import onnx
        import onnxruntime as ort

        meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
        assert json.loads(meta["vidnas.classes"]) == tm.classes
        got = ort.InferenceSession(str(out)).run(None, {"clip": x.numpy()})[0]
        got = torch.from_numpy(got)
    elif fmt == "pt2":
        files = {"vidnas.json": ""}
        program = torch.export.load(str(out), extra_files=files)
        assert json.loads(files["vidnas.json"])["vidnas.classes"] == tm.classes
        with torch.no_grad():
            got = program.module()(x)
    else:
        files = {"vidnas.json": ""}
        model = torch.jit.load(str(out), _extra_files=files)
        assert json.loads(files["vidnas.json"])["vidnas.classes"] == tm.classes
        got = model(x)
    torch.testing.assert_close(got, ref, rtol=0, atol=1e-4)


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch pwned-by-pickle",))


def test_bad_checkpoints_are_refused(trained, finished_search, tmp_path, monkeypatch):
    _, res = trained
    monkeypatch.chdir(tmp_path)
    good = res.best.read_bytes()
    cases = {
        "truncated.pt": good[: len(good) // 2],
        "garbage.pt": random.Random(0).randbytes(4096),
        "bad-protocol.pt": b"\x80\x9a" + random.Random(1).randbytes(4094),
        "empty.pt": b"",
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
    torch.save({"conv.weight": torch.zeros(3)}, tmp_path / "foreign.pt")
    with open(tmp_path / "evil.pt", "wb") as f:
        pickle.dump({"format": "vidnas-checkpoint/1", "kind": "train", "x": _Evil()}, f)
    torch.save(
        {"format": "vidnas-checkpoint/1", "kind": "train", "evil": _Evil()},
        tmp_path / "evil_zip.pt",
    )

    expect = {
        "truncated.pt": "unreadable or truncated",
        "garbage.pt": "unreadable or truncated",
        "bad-protocol.pt": "unreadable or truncated",
        "empty.pt": "unreadable or truncated",
        "foreign.pt": "not a vidnas checkpoint",
        "evil.pt": "refused",
        "evil_zip.pt": "refused",
        "missing.pt": "no such checkpoint",
    }
    for name, message in expect.items():
        with pytest.raises(CheckpointError, match=message):
            load_trained(tmp_path / name)
        r = cli("test", str(tmp_path / name), "--no-progress")
        assert r.returncode == 2 and message in r.stderr, (name, r.stderr)
    assert not (tmp_path / "pwned-by-pickle").exists()

    # A search checkpoint is not a trained network.
    with pytest.raises(CheckpointError, match="a 'search' checkpoint, expected train"):
        load_trained(finished_search[0] / "checkpoints" / "last.pt")

    # Weights that do not fit the checkpoint's own architecture.
    state = load_checkpoint(res.best, "train")
    arch = ArchSpec.from_dict(state["arch"])
    state["arch"] = arch.replace(stem_width=arch.stem_width + 1).to_dict()
    save_checkpoint(tmp_path / "mismatch.pt", state, kind="train")
    with pytest.raises(CheckpointError, match="do not fit its architecture"):
        load_trained(tmp_path / "mismatch.pt")


def test_train_checkpoint_is_self_describing(trained):
    _, res = trained
    state = load_checkpoint(res.best, "train")
    for key in ("arch", "classes", "input", "normalize", "config", "metrics", "model"):
        assert key in state
    tm = load_trained(res.best)
    assert tm.spec == ArchSpec.load(Path(res.run_dir) / "arch.json")
    assert list(tm.input) == state["input"]
