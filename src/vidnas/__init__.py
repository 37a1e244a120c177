"""vidnas: differentiable neural architecture search for video action recognition.

The data flows one way: config -> search space -> supernet -> search ->
architecture spec (JSON) -> network -> train / test / predict / export.
The subpackages are layers, each importing only from those before it:
``config`` and ``errors``; ``engine`` (runtime, run directories, the shared
loop); ``data``; ``models`` (space, spec, cost, networks); ``nas`` (supernet,
architecture step, derivation, the verdict); ``report``; ``loops`` (the search
and retraining runs); ``apps`` (test, predict, export, compare, demo, the
command line). docs/design.md maps each step to its module.

The names below are imported on first use (PEP 562), so that ``import vidnas``
and the ``vidnas`` command start without loading torch until they need it.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> the module that defines it
_EXPORTS = {
    "Config": "vidnas.config",
    "load_config": "vidnas.config",
    "with_overrides": "vidnas.config",
    "VidnasError": "vidnas.errors",
    "ConfigError": "vidnas.errors",
    "DataError": "vidnas.errors",
    "CheckpointError": "vidnas.errors",
    "SpecError": "vidnas.errors",
    "RunError": "vidnas.errors",
    "SearchSpace": "vidnas.models.space",
    "ArchSpec": "vidnas.models.spec",
    "VidNet": "vidnas.models.network",
    "build_network": "vidnas.models.network",
    "Cost": "vidnas.models.cost",
    "network_cost": "vidnas.models.cost",
    "BUILTIN_ARCHS": "vidnas.models.archs",
    "resolve_arch": "vidnas.models.archs",
    "load_trained": "vidnas.models.model_file",
    "Supernet": "vidnas.nas.supernet",
    "Verdict": "vidnas.nas.verdict",
    "run_search": "vidnas.loops.search",
    "run_train": "vidnas.loops.train",
    "run_test": "vidnas.apps.evaluate",
    "predict": "vidnas.apps.predict",
    "export": "vidnas.apps.export",
    "run_compare": "vidnas.apps.compare",
    "run_ablation": "vidnas.apps.compare",
    "run_demo": "vidnas.apps.demo",
}

__all__ = ["__version__", *sorted(_EXPORTS)]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'vidnas' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
