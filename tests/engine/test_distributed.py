"""Data-parallel runs with gloo on the CPU, on the tiny preset: single steps on 2
ranks of one spawned process group, whole runs of 2 processes under torchrun (and
2 single-process "nodes" on 127.0.0.1)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.distributed as tdist
import torch.multiprocessing as mp
from torch import nn
from torch.nn import functional as F

from tests.conftest import run_cli, sigkill_at_checkpoint, tiny
from tests.engine.ddp_job import job
from vidnas.engine.checkpoint import load_checkpoint
from vidnas.engine.distributed import Dist, shard_batches
from vidnas.engine.runtime import Runtime
from vidnas.engine.steps import recalibrate_bn, weight_step
from vidnas.models.archs import resolve_arch
from vidnas.models.network import build_network
from vidnas.models.space import SearchSpace
from vidnas.nas.architect import Architect
from vidnas.nas.penalty import CostPenalty
from vidnas.nas.supernet import Supernet

JOB = Path(__file__).with_name("ddp_job.py")
ROOT = Path(__file__).parents[2]
CPU = torch.device("cpu")
# 3 epochs (one step each at a global batch of 4, on tiny), so that a run can be
# killed after a checkpoint and before its end; a checkpoint after every step.
# The search's settings are the paper's here, not the defaults: Adam divides each
# weight's gradient by its own running size, so where a gradient is nearly zero
# (the last BatchNorm of a block whose branch barely matters yet) float rounding
# is stretched to a full step, and an architecture step whose size follows the
# gradient (arch_eps 0.01) moves alpha so little in 2 steps that rounding is a
# visible share of it, and live blocks (residual_init 1) put it at 6e-5 still:
# under the defaults the runs ended 8e-4 (search weights), 4e-4 (alpha, beta)
# and 1.6e-3 (retraining, AdamW) of the distance trained apart
# instead of 1e-5, which would blur what these tests look for: whether the ranks
# exchanged their gradients.
SEARCH = (
    "search.epochs=3",
    "search.checkpoint_every=1",
    "search.w_optimizer=sgd",
    "search.w_lr=0.02",
    "search.arch_lr=0.0003",
    "search.arch_eps=1e-8",
    "search.residual_init=0",
)
TRAIN_SGD = ("train.optimizer=sgd", "train.lr=0.01")
pytestmark = pytest.mark.skipif(not tdist.is_available(), reason="torch.distributed missing")


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env() -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def torchrun(*args: str, nproc: int = 2, extra: tuple[str, ...] = ()) -> list[str]:
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        *(extra or ("--standalone",)),
        "--nproc_per_node",
        str(nproc),
        *args,
    ]


def run(cmd: list[str], timeout: float = 300) -> subprocess.CompletedProcess:
    res = subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=timeout)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return res


# --------------------------------------------------------------------------- single steps
#
# One process group of 2 ranks (spawned once for the module) takes every step below
# on its part of a batch; each test compares what the ranks saved with one process's
# step on the whole batch.

# How the 4 clips of a batch are split between rank 0 and rank 1: evenly, unevenly
# (an unreadable video), and all on one rank (the other's part all unreadable).
SPLITS = {"even": [[0, 1], [2, 3]], "uneven": [[0, 1, 2], [3]], "rank 1 empty": [[0, 1, 2, 3], []]}
# Which batches of :func:`_bn_batches` each rank re-estimates BatchNorm on (0-3: 2
# clips each; 4: a batch whose every video was unreadable).
BN_SHARDS = {
    "equal": [[0, 1], [2, 3]],
    "unequal": [[0, 1, 2], [3]],
    "rank 1 empty": [[0, 1, 2, 3], [4, 4]],
}


def _part(batch: dict[str, torch.Tensor], idx: list[int]) -> dict[str, torch.Tensor]:
    return {"clip": batch["clip"][idx], "label": batch["label"][idx]}


def _batch(seed: int, n: int = 4) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return {"clip": torch.randn(n, *tiny().input, generator=gen), "label": torch.arange(n) % 4}


def _baseline() -> nn.Module:
    cfg = tiny()
    spec = resolve_arch("r2plus1d-baseline", SearchSpace.from_config(cfg.space))
    torch.manual_seed(0)
    return Runtime(CPU).module(build_network(spec.replace(num_classes=4), 0.0))


def _weight_step(rt: Runtime, idx: list[int] | None = None) -> list[torch.Tensor]:
    """One SGD step of r2plus1d-baseline on the batch (in a job: this rank's part
    ``idx`` of it), BatchNorm in eval mode (normalising by running statistics, which
    do not depend on the split); the weights after it."""
    net = _baseline()
    net.eval()
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    batch = _batch(1)
    model = net
    if rt.dist.enabled:
        model = nn.parallel.DistributedDataParallel(net)
        batch = _part(batch, idx)
    weight_step(model, list(net.parameters()), opt, batch, rt, 0.1, None, lambda _: None)
    return [p.detach().clone() for p in net.parameters()]


def _arch_step(rt: Runtime, idx: list[int] | None = None) -> dict[str, list[torch.Tensor]]:
    """One architecture step of the tiny supernet on the batch (in a job: this
    rank's part ``idx`` of it), BatchNorm in eval mode, from
    small random alpha and beta (so that a step of about arch_lr is not lost in their
    rounding) and an Adam state of two earlier steps (a first Adam step is about
    lr x sign(gradient), whatever the gradient's size); alpha and beta's gradient
    and their values after the step."""
    cfg = tiny()
    torch.manual_seed(0)
    # Live residual blocks (scale 1): with the default 0 every op starts as the
    # identity and alpha's cross-entropy gradient is 0.
    net = rt.module(Supernet(SearchSpace.from_config(cfg.space), cfg.input, 4, 1.0))
    net.eval()
    architect = Architect(net, cfg.search, CostPenalty.from_config(cfg.search), rt, lr=3e-4)
    gen = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for p in architect.params:
            p.copy_(torch.randn(p.shape, generator=gen) * 0.1)
    for _ in range(2):  # gradients of about the size of the step's own
        for p in architect.params:
            p.grad = torch.randn(p.shape, generator=gen) * 3e-4
        architect.opt.step()
    batch = _batch(3)
    if rt.dist.enabled:
        batch = _part(batch, idx)
    architect.step(net, batch, lambda _: None)
    return {
        "grad": [p.grad.clone() for p in architect.params],
        "value": [p.detach().clone() for p in architect.params],
    }


def _bn_batches() -> list[dict[str, torch.Tensor]]:
    """4 batches of 2 clips, of different means and spreads, so that every batch's
    statistics differ, then one of no clips."""
    batches = [_batch(10 + i, 2) for i in range(4)]
    for i, b in enumerate(batches):
        b["clip"] = b["clip"] * (1 + 0.5 * i) + 0.3 * i
    return [*batches, _part(batches[0], [])]


def _bn_stats(net: nn.Module) -> list[torch.Tensor]:
    return [
        b.detach().clone()
        for m in net.modules()
        if isinstance(m, nn.BatchNorm3d)
        for b in (m.running_mean, m.running_var)
    ]


def _recalibrated(rt: Runtime, which: list[int]) -> tuple[list[torch.Tensor], int]:
    """BatchNorm re-estimated on ``which`` of :func:`_bn_batches`: the running means
    and variances, and the clips seen (summed over ranks in a job)."""
    net = _baseline()
    batches = _bn_batches()
    seen = recalibrate_bn(net, [batches[i] for i in which], rt, len(which))
    return _bn_stats(net), seen


def _two_rank_worker(rank: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    tdist.init_process_group("gloo", rank=rank, world_size=2)
    torch.set_num_threads(1)
    rt = Runtime(CPU, dist=Dist(rank, 2, rank))
    held: dict[str, Any] = {"weight": {}, "arch": {}, "bn": {}}
    for name, split in SPLITS.items():
        held["weight"][name] = _weight_step(rt, split[rank])
        held["arch"][name] = _arch_step(rt, split[rank])
    for name, shards in BN_SHARDS.items():
        held["bn"][name] = _recalibrated(rt, shards[rank])
    torch.save(held, f"{out}/rank{rank}.pt")
    tdist.destroy_process_group()


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """The ranks' arithmetic (one thread each): another thread count sums a conv's
    products in another order, and its rounding would be all that a comparison saw."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory) -> list[dict[str, Any]]:
    """What each of 2 ranks of one gloo group held after every step above."""
    out = tmp_path_factory.mktemp("two-ranks")
    mp.spawn(_two_rank_worker, args=(_port(), str(out)), nprocs=2)
    return [torch.load(out / f"rank{r}.pt") for r in (0, 1)]


@pytest.fixture(scope="module")
def one_process() -> dict[str, Any]:
    """The weight and architecture steps in one process, on the whole batch."""
    with _one_thread():
        return {"weight": _weight_step(Runtime(CPU)), "arch": _arch_step(Runtime(CPU))}


@pytest.mark.parametrize("split", SPLITS)
def test_a_two_process_weight_step_is_the_step_on_the_global_batch(two_ranks, one_process, split):
    """With per-batch statistics out of the way (BatchNorm in eval mode), one DDP
    weight step over 2 ranks equals one single-process step on the whole batch, also
    when the clips are split unevenly or one rank has none. Measured: the weights
    apart by at most 1.5e-9 (float rounding); atol 1e-8."""
    r0, r1 = (held["weight"][split] for held in two_ranks)
    for a, b, c in zip(one_process["weight"], r0, r1, strict=True):
        assert torch.equal(b, c)
        torch.testing.assert_close(b, a, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("split", SPLITS)
def test_a_two_process_architecture_step_is_the_step_on_the_global_batch(
    two_ranks, one_process, split
):
    """Alpha and beta are not under DDP: each rank's gradient of its clips' CE
    (weighted by its share of the global batch) plus the cost term is averaged over
    ranks, then every rank takes the same Adam step. That must be one process's step
    on the whole batch, for every split. Measured: gradients (of up to 7e-4) apart
    by at most 6e-11, alpha and beta after the step equal; atol 3e-10 and 1e-8."""
    one = one_process["arch"]
    r0, r1 = (held["arch"][split] for held in two_ranks)
    for a, b in zip(one["grad"], r0["grad"], strict=True):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=3e-10)
    for a, b, c in zip(one["value"], r0["value"], r1["value"], strict=True):
        assert torch.equal(b, c)  # the same step on every rank
        torch.testing.assert_close(b, a, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("shards", BN_SHARDS)
def test_batchnorm_reestimated_on_two_processes_is_the_mean_of_the_ranks_estimates(
    two_ranks, shards
):
    """In a job each rank re-estimates BatchNorm on its shard and the estimates are
    averaged over the ranks that saw clips (recalibrate_bn); the clips seen are
    summed. Measured: equal (the same sums); atol 1e-7."""
    with _one_thread():
        mine = [_recalibrated(Runtime(CPU), part) for part in BN_SHARDS[shards]]
    # A rank that saw no clip has no estimate (its statistics are the reset ones).
    estimates = [stats for stats, seen in mine if seen]
    mean = [sum(s) / len(estimates) for s in zip(*estimates)]
    for held in two_ranks:
        stats, seen = held["bn"][shards]
        assert seen == sum(n for _, n in mine) == 8
        for a, b in zip(mean, stats):
            torch.testing.assert_close(b, a, rtol=1e-6, atol=1e-7)


def test_batchnorm_reestimated_on_two_equal_shards_is_one_process_on_all_of_them(two_ranks):
    """A cumulative average of each batch's mean and (unbiased) variance: with as
    many batches on each rank, the mean of the ranks' averages is one process's average
    over all the batches, the running variance included (one process at the global
    batch size would not agree: in train mode each BatchNorm normalises by its batch's
    statistics, which changes what the layers after it see). Measured: 1.2e-7 apart
    (the sums in another order); atol 5e-7."""
    with _one_thread():
        whole, seen = _recalibrated(Runtime(CPU), [0, 1, 2, 3])
    stats, seen_2 = two_ranks[0]["bn"]["equal"]
    assert seen == seen_2 == 8
    for a, b in zip(whole, stats, strict=True):
        torch.testing.assert_close(b, a, rtol=5e-6, atol=5e-7)


def test_shards_cover_each_global_batch_once():
    batches = [[0, 1, 2, 3, 4, 5], [6, 7, 8]]
    got = [shard_batches(batches, Dist(r, 2, r), 3) for r in (0, 1)]
    assert got == [[[0, 1, 2], [6, 7, 8]], [[3, 4, 5], []]]
    assert shard_batches(batches, Dist(), 6) == batches


# --------------------------------------------------------------------------- whole runs
#
# 2 ranks at batch 2 against 1 process at batch 4, from the same initial weights on
# the same clips in the same order. BatchNorm in train mode normalises each rank's
# clips by their own statistics: on tiny that alone puts the weights 2 processes end
# with as far from one process's as training moved them (measured: 1.03 times that
# distance for the search, 1.01 for retraining; training losses up to 0.27 % apart),
# so a plain comparison cannot tell a correct job from one whose ranks never
# exchanged a gradient (a tolerance of 2 % of the weights' norm allowed 140 times
# that distance). The one process therefore normalises each rank's part of its
# batch apart (:func:`per_rank_batchnorm`), and what is left is float rounding.


def per_rank_batchnorm(monkeypatch: pytest.MonkeyPatch, per_rank: int) -> None:
    """Make BatchNorm in train mode normalise a batch as ranks of ``per_rank`` clips
    each would: every rank's part (contiguous, :func:`shard_batches`) by its own
    statistics, and only rank 0's part updates the running statistics (DDP
    broadcasts rank 0's to the others before every forward)."""
    plain = nn.BatchNorm3d.forward

    def forward(self: nn.BatchNorm3d, x: torch.Tensor) -> torch.Tensor:
        if not self.training or x.shape[0] <= per_rank:
            return plain(self, x)
        first, *others = x.split(per_rank)
        rest = [
            F.batch_norm(p, None, None, self.weight, self.bias, True, 0.0, self.eps) for p in others
        ]
        return torch.cat([plain(self, first), *rest])

    monkeypatch.setattr(nn.BatchNorm3d, "forward", forward)


def _held(run_dir: Path, rank: int) -> dict:
    return torch.load(run_dir / f"rank{rank}.pt", weights_only=False)


def _distance(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    return sum(float((x - y).pow(2).sum()) for x, y in zip(a, b, strict=True)) ** 0.5


def _close(a: Any, b: Any, rel: float) -> bool:
    """``a`` and ``b`` equal, their floats (in dicts and lists) within ``rel``."""
    if isinstance(a, float) and isinstance(b, float):
        return a == pytest.approx(b, rel=rel, abs=1e-12)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k], rel) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y, rel) for x, y in zip(a, b))
    return a == b


def _untimed(history: list[dict]) -> list[dict]:
    """A history without its rows' times (each rank measures its own)."""
    return [{k: v for k, v in row.items() if k != "time_s"} for row in history]


def assert_same_run(one: dict, two: dict, moved: float, rel: float) -> None:
    """The parameters apart by at most ``moved`` times the distance that training
    moved them, every figure of the history within ``rel`` (time aside)."""
    for key in ("weights", "arch"):
        if key in one:
            for x, y in zip(one["start"][key], two["start"][key], strict=True):
                assert torch.equal(x, y), f"{key}: not the same start"
            apart = _distance(one[key], two[key]) / _distance(one[key], one["start"][key])
            assert apart <= moved, f"{key}: {apart:.2e} of the distance moved apart"
    for r1, r2 in zip(_untimed(one["history"]), _untimed(two["history"]), strict=True):
        apart = {k: (r1[k], r2.get(k)) for k in r1 if not _close(r1[k], r2.get(k), rel)}
        assert r1.keys() == r2.keys() and not apart, (r1["epoch"], apart)


def _ranks_agree(run_dir: Path) -> dict:
    a, b = _held(run_dir, 0), _held(run_dir, 1)
    for key in ("weights", "arch"):
        for x, y in zip(a.get(key, []), b.get(key, []), strict=True):
            assert torch.equal(x, y), key
    assert _untimed(a["history"]) == _untimed(b["history"])
    return a


@pytest.fixture(scope="module")
def two_process_search(tmp_path_factory, data_root):
    out = tmp_path_factory.mktemp("ddp") / "search2"
    run(torchrun(str(JOB), "search", str(out), str(data_root), "search.batch_size=2", *SEARCH))
    return out


@pytest.mark.slow
def test_every_rank_ends_with_the_same_architecture(two_process_search):
    held = _ranks_agree(two_process_search)
    assert _held(two_process_search, 1)["spec"] == held["spec"]
    saved = json.loads((two_process_search / "arch.json").read_text())
    assert saved["stages"] == held["spec"]["stages"]


@pytest.mark.slow
def test_a_two_process_search_is_one_process_at_the_global_batch(
    two_process_search, tmp_path, data_root, monkeypatch
):
    """3 epochs of one weight step (4 clips, 2 + 2) and, after the warm-up epoch,
    one architecture step (3 validate clips, 2 + 1), evaluations and derivations;
    one process with BatchNorm per rank part.
    Measured: the weights 9e-6 and alpha and beta 3e-6 of the distance they moved
    apart, every figure of the history within 1.3e-6 (beta's gradient rms; the
    losses within 1e-7); tolerances 5e-5 and 1e-5."""
    per_rank_batchnorm(monkeypatch, 2)
    one = job("search", tmp_path / "search1", data_root, "search.batch_size=4", *SEARCH)
    assert_same_run(_held(one, 0), _held(two_process_search, 0), moved=5e-5, rel=1e-5)
    derived = [_held(d, 0)["spec"] for d in (one, two_process_search)]
    for spec in derived:  # where it ran, and figures already compared in the history
        found = spec.pop("x-search")
        spec["path"], spec["layers"] = found["path"], found["layers"]
    assert derived[0] == derived[1]


@pytest.mark.slow
def test_a_two_process_retraining_is_one_process_at_the_global_batch(
    tmp_path, data_root, monkeypatch
):
    """Retraining r2plus1d-baseline from scratch (2 epochs of 2 steps, each followed
    by validation on 4 held-out videos, 2 on each rank), 2 ranks x batch 2 against
    one process x batch 4 with BatchNorm per rank part. train.dropout=0: the ranks,
    seeded alike, draw the same dropout masks for their clips, which one process
    does not (with dropout 0.5 that alone puts the runs 0.73 times the distance
    trained apart). Measured: the weights 7.5e-6 of the distance they moved apart,
    the history within 4.3e-8 (float32 losses: 16 ulps allowed); tolerances 5e-5
    and 1e-6."""
    over = ("train.dropout=0", "train.holdout=0.34", *TRAIN_SGD)
    two = tmp_path / "train2"
    run(torchrun(str(JOB), "train", str(two), str(data_root), "train.batch_size=2", *over))
    held = _ranks_agree(two)
    per_rank_batchnorm(monkeypatch, 2)
    one = job("train", tmp_path / "train1", data_root, "train.batch_size=4", *over)
    assert_same_run(_held(one, 0), held, moved=5e-5, rel=1e-6)


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


@pytest.mark.slow
def test_a_killed_rank_stops_the_job_and_resume_continues_exactly(
    two_process_search, tmp_path, data_root
):
    out = tmp_path / "search"
    args = ["-m", "vidnas", "search", "-c", "tiny", "-o", str(out), "--no-progress"]
    args += [f"data.root={data_root}", "runtime.threads=1", "search.batch_size=2", *SEARCH]
    launcher = subprocess.Popen(
        torchrun(*args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=_env()
    )
    ckpt = out / "checkpoints" / "last.pt"

    def rank_1() -> int | None:  # started second
        workers = _children(launcher.pid)
        return max(workers) if len(workers) == 2 else None

    # (tiny has one step per epoch at this batch)
    killed = sigkill_at_checkpoint(launcher, ckpt, "search", lambda s: s["epoch"] >= 1, rank_1)
    text, _ = launcher.communicate(timeout=120)
    assert killed is not None, "the run ended before a checkpoint of epoch 2 was caught"
    assert launcher.returncode != 0
    assert "SIGKILL" in text or "Signal 9" in text, text[-2000:]
    # Resume under torchrun; it must end where an uninterrupted 2-process run ends.
    run(torchrun("-m", "vidnas", "search", "--resume", str(out), "--no-progress"))
    done = load_checkpoint(ckpt, "search")
    reference = torch.load(two_process_search / "checkpoints" / "last.pt", weights_only=True)
    for k, v in reference["model"].items():
        assert torch.equal(done["model"][k], v), k
    assert done["history"] == [
        {**r, "time_s": done["history"][i]["time_s"]} for i, r in enumerate(reference["history"])
    ]


@pytest.mark.slow
def test_two_nodes_on_one_machine_agree_with_two_processes(two_process_search, tmp_path, data_root):
    """Two torchrun launchers with --nnodes 2 (c10d rendezvous on 127.0.0.1), one
    process each: the same job as 2 processes on one node."""
    out = tmp_path / "search"
    port = _port()
    nodes = [
        subprocess.Popen(
            torchrun(
                str(JOB),
                "search",
                str(out),
                str(data_root),
                "search.batch_size=2",
                *SEARCH,
                nproc=1,
                extra=(
                    "--nnodes",
                    "2",
                    "--node_rank",
                    str(r),
                    "--master_addr",
                    "127.0.0.1",
                    "--master_port",
                    str(port),
                ),
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=_env(),
        )
        for r in (0, 1)
    ]
    logs = [p.communicate(timeout=300)[0] for p in nodes]
    assert [p.returncode for p in nodes] == [0, 0], logs[0][-2000:] + logs[1][-2000:]
    a, b = _held(out, 0), _held(two_process_search, 0)
    for x, y in zip(a["arch"] + a["weights"], b["arch"] + b["weights"]):
        assert torch.equal(x, y)


@pytest.mark.slow
def test_a_two_process_test_equals_a_one_process_test(trained, tmp_path):
    train_dir, _ = trained
    ckpt = train_dir / "checkpoints" / "best.pt"
    one, two = tmp_path / "one", tmp_path / "two"
    with _one_thread():  # as each rank: the printed probabilities show the rounding
        done = run_cli("test", str(ckpt), "--out", str(one), "--no-progress")
    assert done.returncode == 0, done.stderr[-3000:]
    run(torchrun("-m", "vidnas", "test", str(ckpt), "--out", str(two), "--no-progress"))
    m1, m2 = (json.loads((d / "test_metrics.json").read_text()) for d in (one, two))
    assert m1 == m2
    assert (one / "predictions.csv").read_text() == (two / "predictions.csv").read_text()
    shutil.rmtree(one)
