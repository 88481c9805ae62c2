"""Container options of a shared-GPU app (ZeroGPU): no GPU at start, the way to borrow one.

The app gets our `spaces` module (zero_client/, first on PYTHONPATH so an installed
Hugging Face `spaces` package does not shadow it), the broker's socket folder, the driver's
libraries, and a device cgroup that allows exactly the pool's GPUs and control nodes: the
nodes themselves appear only during a lease (lease_gate.py).
"""

from __future__ import annotations

from pathlib import Path

from spaceport.engine.gpus.attach import DRIVER_MOUNT, GpuAttachment
from spaceport.engine.gpus.inventory import Gpu, discover
from spaceport.engine.gpus.lease_gate import DeviceNode, control_nodes, gpu_node
from spaceport.settings import Settings

CLIENT_DIR = Path(__file__).parent / "zero_client"
CLIENT_MOUNT = "/opt/spaceport/zerogpu"
SOCKET_MOUNT = "/run/spaceport-zero-gpu"
SOCKET_NAME = "broker.sock"


def pool(settings: Settings) -> list[Gpu]:
    """The node's GPUs lent call by call (in the order the operator listed them)."""
    by_uuid = {g.uuid: g for g in discover(settings)}
    return [by_uuid[u] for u in settings.zero_gpu_pool if u in by_uuid]


def shared_attachment(settings: Settings) -> GpuAttachment:
    nodes: list[DeviceNode] = [gpu_node(g) for g in pool(settings)] + control_nodes(settings)
    env = {
        "SPACES_ZERO_GPU": "true",
        "SPACEPORT_ZERO_GPU_SOCKET": f"{SOCKET_MOUNT}/{SOCKET_NAME}",
        "PYTHONPATH": CLIENT_MOUNT,
        "NVIDIA_DRIVER_CAPABILITIES": "compute,utility",
    }
    volumes = {
        str(CLIENT_DIR): {"bind": CLIENT_MOUNT, "mode": "ro"},
        str(settings.zero_gpu_dir): {"bind": SOCKET_MOUNT, "mode": "rw"},
    }
    if settings.gpu_driver_dir is not None:
        env["LD_LIBRARY_PATH"] = DRIVER_MOUNT
        volumes[str(settings.gpu_driver_dir)] = {"bind": DRIVER_MOUNT, "mode": "ro"}
    rules = sorted({f"c {n.major}:{n.minor} rw" for n in nodes})
    return GpuAttachment(env=env, volumes=volumes, device_cgroup_rules=rules)
