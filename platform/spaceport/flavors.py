"""Hardware flavors: Hugging Face's names mapped to CPU, memory and GPU counts.

The operator can override or extend the table with `SPACEPORT_CONFIG` (key `flavors`); this
module is the one place that knows the defaults.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Flavor:
    name: str
    cpus: float
    memory: str
    gpus: int = 0
    gpu_kind: str | None = None
    pids: int = 2048
    runtime: str | None = None  # OCI runtime over the node's app_runtime (None: the node's)
    # A shared GPU flavor (Hugging Face's ZeroGPU): no GPU of its own; a call decorated with
    # `@spaces.GPU` borrows one of the node's shared pool for its duration (spaceport.zerogpu).
    shared_gpu: bool = False

    @property
    def memory_bytes(self) -> int:
        units = {"k": 1024, "m": 1024**2, "g": 1024**3}
        value = self.memory.strip().lower()
        return int(float(value[:-1]) * units[value[-1]]) if value[-1] in units else int(value)


DEFAULT_FLAVORS: dict[str, Flavor] = {
    f.name: f
    for f in [
        Flavor("cpu-basic", cpus=2, memory="16g"),
        Flavor("cpu-upgrade", cpus=8, memory="32g"),
        Flavor("cpu-xl", cpus=16, memory="124g"),
        Flavor("t4-small", cpus=4, memory="15g", gpus=1, gpu_kind="T4"),
        Flavor("t4-medium", cpus=8, memory="30g", gpus=1, gpu_kind="T4"),
        Flavor("l4x1", cpus=8, memory="30g", gpus=1, gpu_kind="L4"),
        Flavor("a10g-small", cpus=4, memory="15g", gpus=1, gpu_kind="A10G"),
        Flavor("a10g-large", cpus=12, memory="46g", gpus=1, gpu_kind="A10G"),
        Flavor("a10g-largex2", cpus=24, memory="92g", gpus=2, gpu_kind="A10G"),
        Flavor("a100-large", cpus=12, memory="142g", gpus=1, gpu_kind="A100"),
        Flavor("h100", cpus=23, memory="240g", gpus=1, gpu_kind="H100"),
        Flavor("h100x8", cpus=184, memory="1920g", gpus=8, gpu_kind="H100"),
        Flavor("zero-a10g", cpus=4, memory="16g", gpu_kind="A10G", shared_gpu=True),
    ]
}


class UnknownFlavor(ValueError):
    pass


def get_flavor(name: str, table: dict[str, Flavor] | None = None) -> Flavor:
    table = table or DEFAULT_FLAVORS
    try:
        return table[name]
    except KeyError:
        raise UnknownFlavor(
            f"unknown hardware {name!r}: choose one of {', '.join(sorted(table))}"
        ) from None
