"""Retraining, multi-view testing, prediction, export and checkpoint safety (issue 5)."""

from __future__ import annotations

import copy
import csv
import itertools
import json
import os
import pickle
import random
import re
import shutil
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from tests.conftest import ASSETS, Killed, cli, kill_after, kill_mid_epoch, run_cli, tiny
from vidnas.apps import evaluate
from vidnas.apps.predict import predict
from vidnas.data import load_index, video_views
from vidnas.engine.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from vidnas.loops.train import TrainLoop, run_train
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

    # The statistics the retraining starts from are a cumulative average, over the
    # first bn_recalibration_batches training batches in train mode, of each
    # BatchNorm's batch mean and unbiased variance: recomputed here on a copy of the
    # network (train mode normalises with the batch's own statistics, so every
    # layer sees the same inputs whatever its running statistics hold).
    batches = list(
        itertools.islice(loop._loader("train_eval", 0), cfg.train.bn_recalibration_batches)
    )
    assert len(batches) == cfg.train.bn_recalibration_batches
    net = copy.deepcopy(loop.net).train()
    seen: dict[str, list[tuple[torch.Tensor, torch.Tensor]]] = {}

    def record(name):
        def hook(_module, inputs, _output):
            x = inputs[0]
            dims = [k for k in range(x.dim()) if k != 1]
            seen.setdefault(name, []).append((x.mean(dims), x.var(dims, unbiased=True)))

        return hook

    bns = {
        name: m
        for name, m in net.named_modules()
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
    }
    for name, m in bns.items():
        m.register_forward_hook(record(name))
    with torch.no_grad():
        for batch in batches:
            net(batch["clip"])
    recalibrated = dict(loop.net.named_modules())
    for name in bns:
        means, variances = zip(*seen[name])
        bn = recalibrated[name]
        torch.testing.assert_close(bn.running_mean, torch.stack(means).mean(0), msg=name)
        torch.testing.assert_close(bn.running_var, torch.stack(variances).mean(0), msg=name)
    assert loop.init["bn_clips"] == sum(len(b["label"]) for b in batches)


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


def _baseline_args(out: Path, data_root: Path, optimizer: str) -> list[str]:
    return [
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


def _same_last_weights(a: Path, b: Path) -> None:
    wa = load_checkpoint(a / "checkpoints" / "last.pt", "train")["model"]
    wb = load_checkpoint(b / "checkpoints" / "last.pt", "train")["model"]
    assert wa.keys() == wb.keys()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_train_baseline_from_the_cli_and_resume_after_sigkill(tmp_path, data_root):
    # A real process killed with SIGKILL mid-epoch: what is on disk must be enough.
    ref = run_cli(*_baseline_args(tmp_path / "ref", data_root, "sgd"))
    assert ref.returncode == 0, ref.stderr[-2000:]
    out = tmp_path / "base"
    ckpt = out / "checkpoints" / "last.pt"
    killed_at, _, stderr = kill_mid_epoch(_baseline_args(out, data_root, "sgd"), ckpt, "train")
    assert killed_at is not None, stderr[-2000:]
    res = run_cli("train", "--resume", str(out), "--no-progress")
    assert res.returncode == 0, res.stderr[-2000:]
    _same_last_weights(out, tmp_path / "ref")


def test_adamw_training_resumes_exactly_after_a_stop_mid_epoch(tmp_path, data_root, monkeypatch):
    # AdamW's moments are part of what a resume must restore; the SIGKILL itself is
    # the test above's, so this one stops in-process at a mid-epoch checkpoint.
    ref = run_cli(*_baseline_args(tmp_path / "ref", data_root, "adamw"))
    assert ref.returncode == 0, ref.stderr[-2000:]
    out = tmp_path / "cut"
    kill_after(monkeypatch, TrainLoop, epoch=1, step=1)
    with pytest.raises(Killed):
        run_cli(*_baseline_args(out, data_root, "adamw"))
    monkeypatch.undo()
    cut = load_checkpoint(out / "checkpoints" / "last.pt", "train")
    assert (cut["epoch"], cut["step"]) == (1, 1)
    res = run_cli("train", "--resume", str(out), "--no-progress")
    assert res.returncode == 0, res.stderr[-2000:]
    _same_last_weights(out, tmp_path / "ref")


# --------------------------------------------------------------------------- the 30-view test


def _rewritten(ckpt: Path, out: Path, weights: dict[str, torch.Tensor]) -> Path:
    """A copy of train checkpoint ``ckpt`` at ``out`` with some of its weights replaced."""
    state = load_checkpoint(ckpt, "train")
    state["model"].update(weights)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(out, state, kind="train")
    return out


def _independent_probs(tm, video: str) -> torch.Tensor:
    """One video's 10 x 3 views, each through the network on its own terms: the
    mean of the views' softmax (float64, so the mean adds no rounding of its own)."""
    views = video_views(video, tm.config, 10, 3)
    assert views.shape[0] == 30
    with torch.no_grad():
        return tm.net(views).double().softmax(-1).mean(0)


@pytest.fixture(scope="module")
def thirty_views(trained, tmp_path_factory):
    """``vidnas test --views 10x3`` on a list of a few videos, with each video's class
    probabilities as vidnas computed them, and the same computed independently.

    The retrained tiny network's probabilities all sit near 1/4 and hardly move from
    view to view: a view more or less in a mean would change it by little more than
    float rounding. So its classifier is sharpened (weights and bias scaled until the
    classes' mean logits span 4 nats on the first video) for every view to count.

    The list's labels come from the network's own predictions, so the figures are
    not all zero: the most predicted class X labels every video predicted X (all
    right), and one more video is labelled with its second choice, another class
    (wrong, but right for a top-1 that counted two guesses). Top-1 is then n / (n + 1)
    with n >= 2 (8 videos, 4 classes), and the mean class accuracy (1 + 0) / 2 = 0.5:
    they differ, as they do not on a balanced list. A broken file in the list must be
    skipped, not counted."""
    _, res = trained
    tmp = tmp_path_factory.mktemp("thirty_views")
    tm = load_trained(res.best)
    index = load_index(tm.config, "test")
    videos = [index.resolve(r) for r in index.records]
    with torch.no_grad():
        logits = tm.net(video_views(videos[0], tm.config, 10, 3)).mean(0)
    k = 4.0 / float(logits.max() - logits.min())
    fc = tm.net.classifier.fc
    sharp = {f"classifier.fc.{n}": k * t.detach() for n, t in fc.named_parameters()}
    ckpt = _rewritten(res.best, tmp / "sharp.pt", sharp)
    tm = load_trained(ckpt)
    probs = {v: _independent_probs(tm, v) for v in videos}
    ranked = {v: p.argsort(descending=True).tolist() for v, p in probs.items()}
    first, second = ({v: r[k] for v, r in ranked.items()} for k in (0, 1))
    x = Counter(first.values()).most_common(1)[0][0]
    right = [v for v in videos if first[v] == x]
    odd = next((v for v in videos if first[v] != x and second[v] != x), None)
    if odd is None:
        odd = right.pop()  # its first choice is x, so its second is not
    odd_label = second[odd]
    assert len(right) >= 2

    broken = tmp / "broken.avi"
    broken.write_bytes(b"not a video")
    labels = {v: x for v in right} | {odd: odd_label, str(broken): 0}
    # The list format names its classes from the training list, whose files a test never opens.
    (tmp / "train.csv").write_text("".join(f"unused/{c}.avi,{c}\n" for c in tm.classes))
    (tmp / "test.csv").write_text("".join(f"{v},{tm.classes[c]}\n" for v, c in labels.items()))

    computed: list[tuple[int, torch.Tensor]] = []
    view_probs = evaluate.view_probs

    def recording(net, views, rt, batch):
        p = view_probs(net, views, rt, batch)
        computed.append((views.shape[0], p))
        return p

    out = tmp / "t"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(evaluate, "view_probs", recording)
        r = run_cli(
            "test",
            str(ckpt),
            "--views",
            "10x3",
            "--out",
            str(out),
            "--no-progress",
            "--set",
            "data.format=list",
            "--set",
            f"data.annotations={tmp / 'train.csv'}",
            "--set",
            f"data.test_annotations={tmp / 'test.csv'}",
        )
    assert r.returncode == 0, r.stderr[-2000:]
    with open(out / "predictions.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return SimpleNamespace(
        ckpt=ckpt,
        classes=tm.classes,
        stdout=r.stdout,
        out=out,
        metrics=json.loads((out / "test_metrics.json").read_text()),
        rows=rows,
        computed=computed,
        probs=probs,
        labels={v: tm.classes[c] for v, c in labels.items()},
        right=right,
        broken=str(broken),
    )


def _video(row: dict[str, str], data_root: Path) -> str:
    return row["path"] if os.path.isabs(row["path"]) else str(data_root / row["path"])


def test_30_view_probabilities_are_the_mean_of_each_views_softmax(thirty_views, data_root):
    t = thirty_views
    assert [_video(row, data_root) for row in t.rows] == [v for v in t.labels if v != t.broken]
    # One probability vector per readable video, each from its 30 views, in list order.
    assert len(t.computed) == len(t.rows)
    for row, (n_views, got) in zip(t.rows, t.computed):
        want = t.probs[_video(row, data_root)]
        assert n_views == 30
        torch.testing.assert_close(got.double(), want, rtol=0, atol=1e-6)
        ranked = [t.classes[k] for k in want.argsort(descending=True).tolist()]
        assert row["label"] == t.labels[_video(row, data_root)]
        assert row["prediction"] == ranked[0]
        assert float(row["probability"]) == pytest.approx(float(want.max()), abs=1e-6)
        assert row["top5"].split(";") == ranked[:5]


def test_30_view_test_reports_top1_and_mean_class_accuracy_of_its_predictions(thirty_views):
    t = thirty_views
    m, rows = t.metrics, t.rows
    assert "top-1" in t.stdout and "x 30" in t.stdout
    assert (m["views"], m["clips"], m["crops"]) == (30, 10, 3)
    assert (m["videos_tested"], m["videos_skipped"]) == (len(rows), 1)
    for key in ("gmacs_per_view", "params"):
        assert m[key] > 0

    # Recomputed from predictions.csv...
    top1 = sum(r["label"] == r["prediction"] for r in rows) / len(rows)
    top5 = sum(r["label"] in r["top5"].split(";") for r in rows) / len(rows)
    per_class = {
        c: [r["label"] == r["prediction"] for r in rows if r["label"] == c]
        for c in {r["label"] for r in rows}
    }
    mean_class = sum(sum(v) / len(v) for v in per_class.values()) / len(per_class)
    assert m["top1"] == pytest.approx(top1, abs=1e-12)
    assert m["top5"] == pytest.approx(top5, abs=1e-12)
    assert m["mean_class_acc"] == pytest.approx(mean_class, abs=1e-12)
    # ... and known from how the list was labelled: one class all right, one all wrong,
    # its one video the network's second choice.
    n = len(t.right)
    assert top1 == pytest.approx(n / (n + 1)) and mean_class == pytest.approx(0.5)
    (wrong,) = [r for r in rows if r["label"] != r["prediction"]]
    assert wrong["top5"].split(";")[1] == wrong["label"]

    with open(t.out / "confusion.csv", newline="") as f:
        confusion = list(csv.reader(f))
    assert confusion[0][1:] == t.classes
    counts = Counter((r["label"], r["prediction"]) for r in rows)
    for line in confusion[1:]:
        assert [int(v) for v in line[1:]] == [counts[(line[0], c)] for c in t.classes]
    assert (t.out / "confusion.png").stat().st_size > 0


def test_predict_gives_what_test_gives_for_the_same_videos(thirty_views, data_root):
    t = thirty_views
    videos = [_video(row, data_root) for row in t.rows]
    preds = predict(t.ckpt, videos, views=(10, 3), topk=len(t.classes))
    for pred, row, (_, probs) in zip(preds, t.rows, t.computed, strict=True):
        assert pred.error is None
        assert pred.top[0][0] == row["prediction"]
        assert pred.top[0][1] == pytest.approx(float(row["probability"]), abs=1e-6)
        # Every class, in the same order and with the same probabilities as test's.
        assert [name for name, _ in pred.top] == row["top5"].split(";")
        for name, p in pred.top:
            assert p == pytest.approx(float(probs[t.classes.index(name)]), abs=1e-6)


def test_mean_over_splits_is_the_mean_of_each_pairs_figures(trained, data_root, tmp_path):
    # Figures known in advance: a network that always says class 0 (its classifier's
    # weights zeroed, its bias favouring class 0), tested on the three splits of a
    # copy of the dataset whose split 2 lists class 0's videos only. Top-1 is then the
    # share of class 0 in each list, the mean class accuracy 1 / (classes listed).
    _, res = trained
    root = Path(shutil.copytree(data_root, tmp_path / "data"))
    lists = root / "ucfTrainTestlist"
    class0 = load_trained(res.best).classes[0]
    (lists / "testlist02.txt").write_text(
        "".join(f"{class0}/{v.name}\n" for v in sorted((root / "UCF-101" / class0).iterdir()))
    )
    fc = load_trained(res.best).net.classifier.fc
    always0 = {
        "classifier.fc.weight": torch.zeros_like(fc.weight),
        "classifier.fc.bias": torch.tensor([10.0] + [0.0] * (len(fc.bias) - 1)),
    }
    # Each pair a private copy: a test writes its results next to its checkpoint.
    pairs = [
        (split, _rewritten(res.best, tmp_path / f"pair{split}" / "always0.pt", always0))
        for split in (1, 2, 3)
    ]
    r = run_cli(
        "test",
        *(f"{c}:{s}" for s, c in pairs),
        "--views",
        "1x1",
        "--data",
        str(root),
        "--no-progress",
    )
    assert r.returncode == 0, r.stderr[-2000:]
    each = []
    for split, ckpt in pairs:
        m = json.loads((ckpt.parent / "test-always0" / "test_metrics.json").read_text())
        listed = (lists / f"testlist0{split}.txt").read_text().split()
        labels = [line.split("/")[0] for line in listed]
        assert m["dataset"].endswith(f"split {split}")
        assert m["videos_tested"] == len(labels)
        assert m["top1"] == pytest.approx(labels.count(class0) / len(labels))
        assert m["mean_class_acc"] == pytest.approx(1 / len(set(labels)))
        each.append(m)
    found = re.search(
        r"mean over 3 checkpoint/split pairs: top-1 ([\d.]+), top-5 ([\d.]+), "
        r"mean class acc ([\d.]+)",
        r.stdout,
    )
    assert found, r.stdout
    for printed, key in zip(found.groups(), ("top1", "top5", "mean_class_acc")):
        mean = sum(m[key] for m in each) / len(each)
        assert float(printed) == pytest.approx(100 * mean, abs=0.005 + 1e-9), key


def test_predict_labels_a_real_clip_and_reports_a_bad_file(trained, tmp_path):
    _, res = trained
    bad = tmp_path / "broken.mp4"
    bad.write_text("this is not a video")
    r = run_cli(
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


# --------------------------------------------------------------------------- export


def _run_exported(fmt: str, path: Path, x: torch.Tensor) -> tuple[torch.Tensor, dict]:
    """The exported file run outside vidnas on ``x``, and the metadata it carries."""
    if fmt == "onnx":
        import onnx
        import onnxruntime as ort

        props = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
        meta = {k: v if k == "vidnas.output" else json.loads(v) for k, v in props.items()}
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return torch.from_numpy(sess.run(None, {"clip": x.numpy()})[0]), meta
    files = {"vidnas.json": ""}
    if fmt == "pt2":
        module = torch.export.load(str(path), extra_files=files).module()
    else:
        module = torch.jit.load(str(path), _extra_files=files)
    with torch.no_grad():
        return module(x), json.loads(files["vidnas.json"])


@pytest.mark.parametrize("fmt", ["onnx", "pt2", "torchscript"])
def test_exported_model_runs_at_another_batch_size_and_carries_the_checkpoints_metadata(
    trained, tmp_path, fmt
):
    _, res = trained
    out = tmp_path / f"model.{fmt}"
    r = run_cli("export", str(res.best), "--format", fmt, "--out", str(out))
    assert r.returncode == 0, r.stderr[-2000:]
    diff = re.search(r"max \|difference\| to PyTorch (\S+)\)", r.stdout)
    assert diff and float(diff.group(1)) < 1e-4, r.stdout

    state = load_checkpoint(res.best, "train")
    tm = load_trained(res.best)
    gen = torch.Generator().manual_seed(1)
    # The export traces at batch 2 and checks itself at batch 3: run it at others.
    for batch in (1, 5):
        x = torch.randn(batch, *state["input"], generator=gen)
        got, meta = _run_exported(fmt, out, x)
        with torch.no_grad():
            want = tm.net(x)
        torch.testing.assert_close(got, want, rtol=0, atol=1e-4)
    assert meta == {
        "vidnas.classes": state["classes"],
        "vidnas.input": state["input"],
        "vidnas.mean": state["normalize"]["mean"],
        "vidnas.std": state["normalize"]["std"],
        "vidnas.arch": state["arch"],
        "vidnas.output": meta["vidnas.output"],
    }
    assert "logits" in meta["vidnas.output"] and "softmax" in meta["vidnas.output"]


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
        r = run_cli("test", str(tmp_path / name), "--no-progress")
        assert r.returncode == 2 and message in r.stderr, (name, r.stderr)
    assert not (tmp_path / "pwned-by-pickle").exists()
    # What a script sees: the exit status of a real process.
    r = cli("test", str(tmp_path / "evil.pt"), "--no-progress")
    assert r.returncode == 2 and "refused" in r.stderr, r.stderr
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
