"""Atomic files and safe checkpoints.

Every file a run relies on is written to a temporary file in the same folder,
flushed to disk and renamed over the old one, so a crash mid-write leaves the
previous version intact. Checkpoints hold only tensors and plain data (no
pickled classes) and are always read with ``torch.load(weights_only=True)``:
a file that would need to run code to load is refused, never executed.
"""

from __future__ import annotations

import io
import os
import pickle
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from vidnas.errors import CheckpointError

FORMAT = "vidnas-checkpoint/1"

__all__ = [
    "FORMAT",
    "CheckpointError",
    "atomic_write_bytes",
    "atomic_write_text",
    "load_checkpoint",
    "save_checkpoint",
]


def _atomic_write(path: Path, write: Any) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    # Make the rename itself durable.
    try:
        dfd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    _atomic_write(path, lambda f: f.write(data))


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def save_checkpoint(path: str | Path, state: Mapping[str, Any], kind: str) -> None:
    """Write ``state`` (tensors and plain data only) atomically, tagged with its kind."""
    payload = {"format": FORMAT, "kind": kind, **state}
    buf = io.BytesIO()
    torch.save(payload, buf)
    atomic_write_bytes(Path(path), buf.getvalue())


def load_checkpoint(path: str | Path, kind: str | tuple[str, ...] | None = None) -> dict[str, Any]:
    """Read a vidnas checkpoint safely, refusing anything that is not one."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    with open(path, "rb") as f:
        head = f.read(2)
    # torch.save writes a zip archive; older torch and plain pickle files start with the
    # PROTO opcode and a protocol of 2 to 5. Anything else is not a checkpoint at all.
    is_pickle = len(head) == 2 and head[0] == 0x80 and 2 <= head[1] <= 5
    if not zipfile.is_zipfile(path) and not is_pickle:
        what = "an empty file" if not head else "not a PyTorch checkpoint file"
        raise CheckpointError(f"{path}: unreadable or truncated checkpoint ({what})")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise CheckpointError(
            f"{path}: refused: it is not a plain-data checkpoint (loading it would need to "
            f"run code or unpickle objects): {str(err).splitlines()[0]}"
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as err:
        raise CheckpointError(
            f"{path}: unreadable or truncated checkpoint ({str(err).splitlines()[0]})"
        ) from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a vidnas checkpoint (no '{FORMAT}' tag)")
    kinds = (kind,) if isinstance(kind, str) else kind
    if kinds is not None and state.get("kind") not in kinds:
        raise CheckpointError(
            f"{path}: a '{state.get('kind')}' checkpoint, expected {' or '.join(kinds)}"
        )
    return state
