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


def fake_gpu_env(data: Path) -> dict[str, str]:
    """Env for the node's settings; empty when device nodes cannot be made (not root)."""
    root = data / "fake-gpu"
    libs = root / "lib64"
    libs.mkdir(parents=True, exist_ok=True)
    (libs / "libcuda.so.1").write_text("fake driver library (tests)\n")
    nodes = {name: root / name for name in ("nvidia0", "nvidia1", "nvidiactl", "nvidia-uvm")}
    try:
        for path in nodes.values():
            if not path.exists():
                os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except PermissionError:
        return {}
    gpus = [
        {"index": i, "uuid": uuid, "name": "Fake GPU (tests)", "device": str(nodes[f"nvidia{i}"])}
        for i, uuid in enumerate(FAKE_UUIDS)
    ]
    control = [f"{nodes['nvidiactl']}:/dev/nvidiactl", f"{nodes['nvidia-uvm']}:/dev/nvidia-uvm"]
    return {
        "SPACEPORT_GPU_DISCOVERY": "config",
        "SPACEPORT_GPUS": json.dumps(gpus),
        "SPACEPORT_GPU_MODE": "devices",
        "SPACEPORT_GPU_CONTROL_DEVICES": json.dumps(control),
        "SPACEPORT_GPU_DRIVER_DIR": str(libs),
    }
