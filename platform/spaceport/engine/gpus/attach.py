"""Docker container options that give a container its GPUs, in the mode the operator chose.

The Docker backend's own translation of a spec's GPUs (Spaceport's `Gpu` devices) into engine
options; nothing above the engine sees these types.

- `device-requests`: the engine's standard GPU request (hosts with NVIDIA's container toolkit).
- `cdi`: CDI device names (`nvidia.com/gpu=N`), resolved by an engine with CDI enabled.
- `devices`: the device nodes themselves plus the driver's libraries mounted read-only, for
  hosts without the toolkit (what a CDI spec would describe, done by the platform).

Every mode sets `NVIDIA_VISIBLE_DEVICES` to the assigned devices' UUIDs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import structlog
from docker.types import DeviceRequest

from spaceport.engine.gpus.inventory import Gpu
from spaceport.settings import Settings

log = structlog.get_logger(__name__)

DRIVER_MOUNT = "/usr/local/nvidia/lib64"
DRIVER_DIR_MISSING = (
    "gpu_mode 'devices' needs gpu_driver_dir: the host folder holding the driver's "
    "libraries (libcuda.so.1, libnvidia-ml.so.1), e.g. /usr/local/nvidia/lib64"
)


class GpuConfigError(RuntimeError):
    pass


@dataclass
class GpuAttachment:
    env: dict[str, str] = field(default_factory=dict)
    device_requests: list[Any] = field(default_factory=list)
    devices: list[str] = field(default_factory=list)
    volumes: dict[str, dict[str, str]] = field(default_factory=dict)
    device_cgroup_rules: list[str] = field(default_factory=list)


def _control_devices(settings: Settings) -> list[str]:
    out = []
    for entry in settings.gpu_control_devices:
        host, _, inside = entry.partition(":")
        if not os.path.exists(host):
            log.warning("gpus.control_device_missing", device=host)
            continue
        out.append(f"{host}:{inside or host}:rwm")
    return out


def check_mode(settings: Settings) -> None:
    """Raise GpuConfigError when the node's GPU mode cannot give a container its devices."""
    if settings.gpu_mode not in ("device-requests", "cdi") and settings.gpu_driver_dir is None:
        raise GpuConfigError(DRIVER_DIR_MISSING)


def attachment(settings: Settings, gpus: list[Gpu]) -> GpuAttachment | None:
    if not gpus:
        return None
    env = {
        "NVIDIA_VISIBLE_DEVICES": ",".join(g.uuid for g in gpus),
        "NVIDIA_DRIVER_CAPABILITIES": "compute,utility",
    }
    mode = settings.gpu_mode
    if mode == "device-requests":
        request = DeviceRequest(
            driver="nvidia", device_ids=[g.uuid for g in gpus], capabilities=[["gpu"]]
        )
        return GpuAttachment(env=env, device_requests=[request])
    if mode == "cdi":
        request = DeviceRequest(
            driver="cdi", device_ids=[f"nvidia.com/gpu={g.index}" for g in gpus]
        )
        return GpuAttachment(env=env, device_requests=[request])
    if settings.gpu_driver_dir is None:
        raise GpuConfigError(DRIVER_DIR_MISSING)
    devices = [f"{g.device}:{g.container_device}:rwm" for g in gpus] + _control_devices(settings)
    env["LD_LIBRARY_PATH"] = DRIVER_MOUNT
    volumes = {str(settings.gpu_driver_dir): {"bind": DRIVER_MOUNT, "mode": "ro"}}
    return GpuAttachment(env=env, devices=devices, volumes=volumes)
