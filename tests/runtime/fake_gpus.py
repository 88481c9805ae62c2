"""A FAKE GPU inventory for the test node: test machines have no GPU (ARCHITECTURE.md allows a
fake only for that). Two "GPUs" whose device nodes are stand-ins made with mknod (character
device 1:3, the numbers of /dev/null), plus a fake driver library folder, so the runtime's
`devices` mode starts real containers that hold real device nodes; the real-GPU check is
described in docs/gpu.md.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

FAKE_UUIDS = ("GPU-fake-0000-spaceport-test", "GPU-fake-0001-spaceport-test")
# A third fake GPU makes the shared pool (zero-a10g; tests/runtime/test_zero_gpu.py). Its node
# is 1:7 (the numbers of /dev/full), distinct from the others' and from anything an app holds
# open, so "which processes hold the pool GPU" has an answer to check.
SHARED_UUID = "GPU-fake-0002-spaceport-shared"


def fake_gpu_env(data: Path) -> dict[str, str]:
    """Env for the node's settings; empty when device nodes cannot be made (not root)."""
    root = data / "fake-gpu"
    libs = root / "lib64"
    libs.mkdir(parents=True, exist_ok=True)
    (libs / "libcuda.so.1").write_text("fake driver library (tests)\n")
    names = ("nvidia0", "nvidia1", "nvidia2", "nvidiactl", "nvidia-uvm")
    nodes = {name: root / name for name in names}
    try:
        for name, path in nodes.items():
            if not path.exists():
                minor = 7 if name == "nvidia2" else 3
                os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, minor))
    except PermissionError:
        return {}
    gpus = [
        {"index": i, "uuid": uuid, "name": "Fake GPU (tests)", "device": str(nodes[f"nvidia{i}"])}
        for i, uuid in enumerate((*FAKE_UUIDS, SHARED_UUID))
    ]
    control = [f"{nodes['nvidiactl']}:/dev/nvidiactl", f"{nodes['nvidia-uvm']}:/dev/nvidia-uvm"]
    return {
        "SPACEPORT_GPU_DISCOVERY": "config",
        "SPACEPORT_GPUS": json.dumps(gpus),
        "SPACEPORT_GPU_MODE": "devices",
        "SPACEPORT_GPU_CONTROL_DEVICES": json.dumps(control),
        "SPACEPORT_GPU_DRIVER_DIR": str(libs),
        # The shared pool: short calls and a small quota, so their limits are quick to reach.
        "SPACEPORT_ZERO_GPU_POOL": json.dumps([SHARED_UUID]),
        "SPACEPORT_ZERO_GPU_DEFAULT_DURATION_S": "3",
        "SPACEPORT_ZERO_GPU_MAX_DURATION_S": "20",
        "SPACEPORT_ZERO_GPU_QUOTA_S": "24",
        "SPACEPORT_ZERO_GPU_QUOTA_PERIOD_S": "86400",
    }
