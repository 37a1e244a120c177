"""GPU readiness: run this as it is on a machine with CUDA (issue 13, item 5).

    python benchmarks/gpu_check.py            # or: make gpu-check

1. The CUDA-marked tests (``pytest -m cuda``): search, retrain, 30-view test,
   predict and export of the ``tiny`` preset on the GPU, in fp32 and bf16.
2. A DDP smoke over every visible GPU, once vidnas has a DDP mode (issue 13,
   item 1); until then it says it skipped.
3. Throughput (clips/s) and peak GPU memory of the search's weight and
   architecture steps and of the derived network's training step
   (``paper-k400``) at the paper's input 3x16x224x224, in fp32 and bf16, through
   ``benchmarks/search_step.py``.

Without CUDA every part says what it skipped and the script exits 0, so it can
run anywhere; with CUDA it exits 1 if a test failed.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _run(cmd: list[str], timeout: float) -> int:
    print("$", " ".join(cmd), flush=True)
    try:
        return subprocess.run(cmd, cwd=ROOT, timeout=timeout).returncode
    except subprocess.TimeoutExpired:
        print(f"stopped after {timeout:.0f} s", flush=True)
        return 124


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 8], help="paper-input batches")
    ap.add_argument("--precision", nargs="+", default=["fp32", "bf16"])
    ap.add_argument("--skip-tests", action="store_true")
    args = ap.parse_args()

    import torch

    print(f"# torch {torch.__version__}, CUDA {torch.version.cuda}", flush=True)
    if not torch.cuda.is_available():
        print("no CUDA device: skipped the CUDA tests, the DDP smoke and the GPU figures")
        return 0
    n = torch.cuda.device_count()
    for i in range(n):
        p = torch.cuda.get_device_properties(i)
        print(
            f"# cuda:{i} {p.name}, {p.total_memory / 2**30:.0f} GiB, bf16 "
            f"{'yes' if torch.cuda.is_bf16_supported() else 'no'}",
            flush=True,
        )

    failed = False
    print("\n## CUDA tests", flush=True)
    if args.skip_tests:
        print("skipped (--skip-tests)")
    else:
        failed |= _run([sys.executable, "-m", "pytest", "-q", "-m", "cuda", "tests"], 900) != 0

    print("\n## DDP smoke", flush=True)
    print(f"skipped: vidnas has no DDP mode yet (issue 13, item 1); {n} GPU(s) visible")

    print("\n## Paper input 3x16x224x224", flush=True)
    for precision in args.precision:
        for batch in args.batch:
            _run(
                [
                    sys.executable,
                    "benchmarks/search_step.py",
                    "--preset",
                    "paper",
                    "--batch",
                    str(batch),
                    "--precision",
                    precision,
                    "--device",
                    "cuda",
                    "--step",
                    "weight",
                    "arch",
                    "train",
                    "--iters",
                    "5",
                    "--warmup",
                    "2",
                ],
                600,
            )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
