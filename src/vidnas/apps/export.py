"""Export a trained network to a file that runs without vidnas.

Every format takes normalised clips ``(N, 3, T, H, W)`` (N free) and returns
logits ``(N, classes)``; each carries what a user needs to feed it: class
names, input shape and normalisation, as ONNX metadata properties
(``vidnas.classes`` etc., JSON values) or as the extra file ``vidnas.json`` of
a ``torch.export`` program (``.pt2``, today's PyTorch format, loaded with
``torch.export.load``) or of a TorchScript file (deprecated by PyTorch, kept
for old runtimes). After writing, the file is run once and compared with
PyTorch.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch

from vidnas.models.model_file import TrainedModel, load_trained

log = logging.getLogger("vidnas.export")

Format = Literal["onnx", "pt2", "torchscript"]


@dataclass
class ExportResult:
    path: Path
    format: str
    max_abs_diff: float | None  # against PyTorch on a random batch; None if not checked


def _metadata(tm: TrainedModel) -> dict[str, str]:
    return {
        "vidnas.classes": json.dumps(tm.classes),
        "vidnas.input": json.dumps(list(tm.spec.input)),
        "vidnas.mean": json.dumps(list(tm.mean)),
        "vidnas.std": json.dumps(list(tm.std)),
        "vidnas.arch": json.dumps(tm.spec.to_dict()),
        "vidnas.output": "logits; softmax over the last axis gives class probabilities",
    }


def _export_onnx(tm: TrainedModel, path: Path, example: torch.Tensor) -> None:
    try:
        import onnx  # optional: the export extra
    except ImportError as err:
        raise RuntimeError(
            "ONNX export needs the 'onnx' and 'onnxscript' packages: pip install 'vidnas[export]'"
        ) from err
    batch = torch.export.Dim("batch", min=1, max=4096)
    torch.onnx.export(
        tm.net,
        (example,),
        str(path),
        input_names=["clip"],
        output_names=["logits"],
        dynamic_shapes={"x": {0: batch}},
        external_data=False,
        verbose=False,
    )
    model = onnx.load(str(path))
    for k, v in _metadata(tm).items():
        prop = model.metadata_props.add()
        prop.key, prop.value = k, v
    onnx.save(model, str(path))


def _check_onnx(path: Path, x: torch.Tensor) -> torch.Tensor | None:
    try:
        import onnxruntime as ort  # optional: the export extra
    except ImportError:
        log.warning("onnxruntime is not installed: the ONNX file was not test-run")
        return None
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return torch.from_numpy(sess.run(None, {"clip": x.numpy()})[0])


def export(ckpt: str | Path, fmt: Format, out: str | Path | None = None) -> ExportResult:
    """Write ``ckpt``'s network as ONNX, a torch.export program or TorchScript and
    check it against PyTorch."""
    tm = load_trained(ckpt)
    suffix = {"onnx": ".onnx", "pt2": ".pt2", "torchscript": ".torchscript.pt"}[fmt]
    path = Path(out) if out else Path(ckpt).with_suffix(suffix)
    path.parent.mkdir(parents=True, exist_ok=True)
    gen = torch.Generator().manual_seed(0)
    example = torch.randn(2, *tm.spec.input, generator=gen)
    check = torch.randn(3, *tm.spec.input, generator=gen)  # another batch size on purpose
    with torch.no_grad():
        ref = tm.net(check)
    extra = {
        "vidnas.json": json.dumps(
            {k: json.loads(v) if k != "vidnas.output" else v for k, v in _metadata(tm).items()}
        )
    }
    if fmt == "onnx":
        _export_onnx(tm, path, example)
        got = _check_onnx(path, check)
    elif fmt == "pt2":
        batch = torch.export.Dim("batch", min=1, max=4096)
        program = torch.export.export(tm.net.eval(), (example,), dynamic_shapes={"x": {0: batch}})
        torch.export.save(program, str(path), extra_files=extra)
        with torch.no_grad():
            got = torch.export.load(str(path)).module()(check)
    else:
        with torch.no_grad():
            traced = torch.jit.trace(tm.net, example)
        torch.jit.save(traced, str(path), _extra_files=extra)
        with torch.no_grad():
            got = torch.jit.load(str(path))(check)
    diff = None if got is None else float((got - ref).abs().max())
    return ExportResult(path, fmt, diff)
