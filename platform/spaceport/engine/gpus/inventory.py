"""The node's GPUs: discovered through NVML, or listed in config (key `gpus`).

Config wins when it lists devices (discovery `auto`), so an operator can pin the inventory,
and tests can describe a fake one on machines without a GPU.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import structlog

from spaceport.settings import Settings

log = structlog.get_logger(__name__)

_cache: dict[tuple[object, ...], list[Gpu]] = {}
_lock = threading.Lock()


class GpuDiscoveryError(RuntimeError):
    """NVML was asked for and does not answer; the message says what to install or set."""


@dataclass(frozen=True)
class Gpu:
    index: int
    uuid: str
    name: str
    device: str  # the host's device node
    node: str = ""  # cluster mode: the node that has it ("" on one machine)

    @property
    def container_device(self) -> str:
        """Where the node appears inside a container (a real node keeps its path)."""
        return self.device if self.device.startswith("/dev/") else f"/dev/nvidia{self.index}"


def _from_config(settings: Settings) -> list[Gpu]:
    return [
        Gpu(g.index, g.uuid, g.name, g.device or f"/dev/nvidia{g.index}")
        for g in sorted(settings.gpus, key=lambda g: g.index)
    ]


def _from_nvml() -> list[Gpu]:
    import pynvml

    pynvml.nvmlInit()
    try:
        gpus = []
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            uuid = pynvml.nvmlDeviceGetUUID(handle)
            name = pynvml.nvmlDeviceGetName(handle)
            minor = pynvml.nvmlDeviceGetMinorNumber(handle)
            gpus.append(
                Gpu(
                    index,
                    uuid.decode() if isinstance(uuid, bytes) else str(uuid),
                    name.decode() if isinstance(name, bytes) else str(name),
                    f"/dev/nvidia{minor}",
                )
            )
        return gpus
    finally:
        pynvml.nvmlShutdown()


def _from_swarm(settings: Settings) -> list[Gpu]:
    """The `GPU` generic resources the Swarm's ready nodes advertise, one per device."""
    from spaceport.engine.swarm_backend import SwarmBackend  # it builds on this module

    gpus: list[Gpu] = []
    for node in SwarmBackend(settings).nodes():
        if node.state != "ready" or node.availability != "active":
            continue
        for device, _ in node.gpus:
            gpus.append(Gpu(len(gpus), device, "GPU", f"swarm:{node.name}", node=node.name))
    return gpus


def discover(settings: Settings) -> list[Gpu]:
    """This node's GPUs (cached per process: devices do not come and go while it runs); in
    cluster mode, every ready node's (asked each time: nodes come and go)."""
    if settings.runtime == "swarm":
        return _from_swarm(settings)
    key = (settings.gpu_discovery, tuple(g.model_dump_json() for g in settings.gpus))
    with _lock:
        if key in _cache:
            return _cache[key]
        mode = settings.gpu_discovery
        if mode == "none":
            gpus: list[Gpu] = []
        elif mode == "config" or (mode == "auto" and settings.gpus):
            gpus = _from_config(settings)
        else:
            try:
                gpus = _from_nvml()
            except Exception as exc:  # no driver, no library: a CPU-only node
                if mode == "nvml":
                    raise GpuDiscoveryError(
                        f"NVML did not answer ({exc}): install the NVIDIA driver on this host, "
                        "or list the GPUs in config (gpu_discovery: config, gpus: [...])"
                    ) from exc
                gpus = []
        log.info("gpus.discovered", count=len(gpus), mode=mode)
        _cache[key] = gpus
        return gpus
