"""vidnas: differentiable neural architecture search for video action recognition.

The data flows one way: config -> search space -> supernet -> search ->
architecture spec (JSON) -> network -> train / test / predict / export.
"""

from vidnas.archs import BUILTIN_ARCHS, resolve_arch
from vidnas.config import Config, ConfigError, load_config
from vidnas.cost import Cost, network_cost
from vidnas.network import VidNet, build_network
from vidnas.space import SearchSpace
from vidnas.spec import ArchSpec, SpecError

__version__ = "0.1.0"

__all__ = [
    "BUILTIN_ARCHS",
    "ArchSpec",
    "Config",
    "ConfigError",
    "Cost",
    "SearchSpace",
    "SpecError",
    "VidNet",
    "build_network",
    "load_config",
    "network_cost",
    "resolve_arch",
]
