"""Data-parallel runs with gloo on the CPU: 2 processes under torchrun (and 2
single-process "nodes" on 127.0.0.1), on the tiny preset."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as tdist
import torch.multiprocessing as mp

from tests.conftest import sigkill_at_checkpoint, tiny
from vidnas.engine.checkpoint import load_checkpoint
from vidnas.engine.distributed import Dist, shard_batches
from vidnas.engine.runtime import Runtime
from vidnas.engine.steps import weight_step
from vidnas.models.archs import resolve_arch
from vidnas.models.network import build_network
from vidnas.models.space import SearchSpace

JOB = Path(__file__).with_name("ddp_job.py")
ROOT = Path(__file__).parents[2]
# 3 epochs (one step each at a global batch of 4, on tiny), so that a run can be
# killed after a checkpoint and before its end; a checkpoint after every step.
SEARCH = ("search.epochs=3", "search.checkpoint_every=1")
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


# --------------------------------------------------------------------------- one step


def _step_worker(rank: int, port: int, parts: list[list[int]], out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    tdist.init_process_group("gloo", rank=rank, world_size=2)
    torch.set_num_threads(1)
    net, opt, batch, _ = _step_setup()
    dist = Dist(rank, 2, rank)
    ddp = torch.nn.parallel.DistributedDataParallel(net)
    mine = parts[rank]
    local = {
        "clip": batch["clip"][mine],
        "label": batch["label"][mine],
    }
    weight_step(
        ddp,
        list(net.parameters()),
        opt,
        local,
        Runtime(torch.device("cpu"), dist=dist),
        0.1,
        None,
        lambda _: None,
    )
    torch.save([p.detach() for p in net.parameters()], f"{out}/rank{rank}.pt")
    tdist.destroy_process_group()


def _step_setup():
    cfg = tiny(Path("unused"))
    spec = resolve_arch("r2plus1d-baseline", SearchSpace.from_config(cfg.space))
    torch.manual_seed(0)
    net = Runtime(torch.device("cpu")).module(build_network(spec.replace(num_classes=4), 0.0))
    net.eval()  # BatchNorm on running statistics: the step no longer depends on the split
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    gen = torch.Generator().manual_seed(1)
    batch = {
        "clip": torch.randn(4, *cfg.input, generator=gen),
        "label": torch.tensor([0, 1, 2, 3]),
    }
    return net, opt, batch, cfg


@pytest.mark.parametrize("parts", [[[0, 1], [2, 3]], [[0, 1, 2], [3]], [[0, 1, 2, 3], []]])
def test_a_two_process_step_is_the_step_on_the_global_batch(tmp_path, parts):
    """With per-batch statistics out of the way (BatchNorm in eval mode), one DDP
    weight step over 2 ranks equals one single-process step on the whole batch, also
    when the clips are split unevenly (an unreadable video) or one rank has none."""
    net, opt, batch, _ = _step_setup()
    weight_step(
        net,
        list(net.parameters()),
        opt,
        batch,
        Runtime(torch.device("cpu")),
        0.1,
        None,
        lambda _: None,
    )
    mp.spawn(_step_worker, args=(_port(), parts, str(tmp_path)), nprocs=2)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1))
    for a, b, c in zip(net.parameters(), r0, r1):
        assert torch.equal(b, c)
        torch.testing.assert_close(a.detach(), b, rtol=1e-5, atol=1e-6)


def test_shards_cover_each_global_batch_once():
    batches = [[0, 1, 2, 3, 4, 5], [6, 7, 8]]
    got = [shard_batches(batches, Dist(r, 2, r), 3) for r in (0, 1)]
    assert got == [[[0, 1, 2], [6, 7, 8]], [[3, 4, 5], []]]
    assert shard_batches(batches, Dist(), 6) == batches


# --------------------------------------------------------------------------- whole runs


def _held(run_dir: Path, rank: int) -> dict:
    return torch.load(run_dir / f"rank{rank}.pt", weights_only=False)


@pytest.fixture(scope="module")
def two_process_search(tmp_path_factory, data_root):
    out = tmp_path_factory.mktemp("ddp") / "search2"
    run(torchrun(str(JOB), "search", str(out), str(data_root), "search.batch_size=2", *SEARCH))
    return out


@pytest.mark.slow
def test_every_rank_ends_with_the_same_architecture(two_process_search):
    a, b = _held(two_process_search, 0), _held(two_process_search, 1)
    for x, y in zip(a["arch"], b["arch"]):
        assert torch.equal(x, y)
    for x, y in zip(a["weights"], b["weights"]):
        assert torch.equal(x, y)
    assert a["spec"] == b["spec"]
    saved = json.loads((two_process_search / "arch.json").read_text())
    assert saved["stages"] == a["spec"]["stages"]


@pytest.mark.slow
def test_two_processes_agree_with_one_of_the_same_global_batch(
    two_process_search, tmp_path, data_root
):
    """2 ranks x batch 2 against 1 process x batch 4, from the same initial weights
    on the same clips in the same order. The one known difference is BatchNorm,
    which normalises each rank's 2 clips by their own statistics instead of all 4
    (test_a_two_process_step_is_the_step_on_the_global_batch shows that without it
    a step is the same to float rounding, which is where a wrong weighting of the
    ranks' gradients would show). Measured on tiny (3 epochs): the final weights
    differ by 0.015 % of their norm and the epochs' training losses by up to 0.27 %;
    the tolerances,
    2 % and 1 %, leave room for other CPUs' rounding and still catch a run that
    diverged."""
    one = tmp_path / "search1"
    run(
        [
            sys.executable,
            str(JOB),
            "search",
            str(one),
            str(data_root),
            "search.batch_size=4",
            *SEARCH,
        ]
    )
    a, b = _held(one, 0), _held(two_process_search, 0)
    norm = sum(float(x.pow(2).sum()) for x in a["weights"]) ** 0.5
    apart = sum(float((x - y).pow(2).sum()) for x, y in zip(a["weights"], b["weights"])) ** 0.5
    assert apart < 0.02 * norm, (apart, norm)
    for r1, r2 in zip(a["history"], b["history"], strict=True):
        assert r1["train_loss"] == pytest.approx(r2["train_loss"], rel=0.01)


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
    run([sys.executable, "-m", "vidnas", "test", str(ckpt), "--out", str(one), "--no-progress"])
    run(torchrun("-m", "vidnas", "test", str(ckpt), "--out", str(two), "--no-progress"))
    m1, m2 = (json.loads((d / "test_metrics.json").read_text()) for d in (one, two))
    assert m1 == m2
    assert (one / "predictions.csv").read_text() == (two / "predictions.csv").read_text()
    shutil.rmtree(one)
