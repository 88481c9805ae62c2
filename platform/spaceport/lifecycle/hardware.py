"""What a Space gets to run with: its flavor's limits (operator config over the defaults).

`spaceport.flavors` holds Hugging Face's default table; the operator's `flavors` config key
adds or replaces entries. The runtime asks here, never the default table directly.
"""

from __future__ import annotations

import re

from spaceport.flavors import DEFAULT_FLAVORS, Flavor, get_flavor
from spaceport.settings import Settings

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNIT_S = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def flavor_table(settings: Settings) -> dict[str, Flavor]:
    table = dict(DEFAULT_FLAVORS)
    for name, cfg in settings.flavors.items():
        table[name] = Flavor(
            name,
            cfg.cpus,
            cfg.memory,
            cfg.gpus,
            cfg.gpu_kind,
            cfg.pids,
            cfg.runtime,
            cfg.shared_gpu,
        )
    return table


def resolve_flavor(settings: Settings, name: str | None) -> Flavor:
    """The flavor named (default: the node's default hardware); UnknownFlavor lists choices."""
    return get_flavor(name or settings.default_hardware, flavor_table(settings))


def shared_gpu_refusal(settings: Settings, flavor: Flavor) -> str | None:
    """Why a shared-GPU flavor cannot be given on this node (None: it can, or it is not one)."""
    if not flavor.shared_gpu:
        return None
    if settings.runtime == "swarm":
        return (
            f"{flavor.name} lends GPUs call by call, which cluster mode does not offer yet: "
            "choose a GPU flavor"
        )
    if not settings.zero_gpu_pool:
        return (
            f"{flavor.name} needs this node's shared GPU pool and it has none: an operator "
            "lists its GPUs in SPACEPORT_ZERO_GPU_POOL (docs/gpu.md, 'Shared GPUs')"
        )
    return None


def parse_duration(value: object) -> float | None:
    """Hugging Face's `startup_duration_timeout` ("30m", "1h", "90s", 120); None if unusable."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    match = _DURATION.match(str(value or ""))
    if not match:
        return None
    return float(match.group(1)) * _UNIT_S[match.group(2)]
