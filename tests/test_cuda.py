"""The whole flow on a CUDA device: search, retrain, 30-view test, predict, export.

Skipped without CUDA (CI has none); ``benchmarks/gpu_check.py`` runs these on a
GPU machine. Each step is the one a user runs, on the ``tiny`` preset, so what
breaks here is what would break for them (the first run on an H100 found the
cost table left on the CPU while alpha and beta were on the GPU).
"""

from __future__ import annotations

import pytest
import torch

from tests.conftest import ASSETS, tiny

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


def test_supernet_expected_cost_on_cuda(tiny_space, tiny_cfg):
    from vidnas.nas.supernet import Supernet

    net = Supernet(tiny_space, tiny_cfg.input, 4)
    cpu = net.expected_macs().detach()
    gpu = net.cuda().expected_macs()
    assert gpu.is_cuda and gpu.dtype == torch.float64
    assert abs(gpu.detach().item() - cpu.item()) < 1e-6 * cpu.item()
    gpu.backward()
    assert all(p.grad is not None for p in net.arch_parameters())


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_search_train_test_predict_export_on_cuda(tmp_path, data_root, precision):
    from vidnas.apps.evaluate import run_test
    from vidnas.apps.export import export
    from vidnas.apps.predict import predict
    from vidnas.loops.search import run_search
    from vidnas.loops.train import run_train

    over = ("runtime.device=cuda", f"runtime.precision={precision}")
    cfg = tiny(data_root, *over)
    sres = run_search(cfg, out=tmp_path / "search", progress=False)
    assert sres.verdict is not None
    tres = run_train(
        tmp_path / "search" / "arch.json",
        cfg,
        out=tmp_path / "train",
        init_from=tmp_path / "search",
        progress=False,
    )
    test = run_test(tres.best, (2, 1), out=tmp_path / "test", progress=False).metrics
    assert 0.0 <= test["top1"] <= 1.0
    preds = predict(tres.best, [ASSETS / "test.avi"], (2, 1))
    assert preds[0].error is None and len(preds[0].top) > 0
    res = export(tres.best, "pt2", tmp_path / "model.pt2")
    assert res.path.is_file()
