"""Real-GPU check: the platform's own GPU code against a real engine and a real GPU.

NVML discovery (`inventory`), the allocator (a second GPU Space is queued), the `devices` mode
(`attach`) and the docker backend's container options (`DockerBackend._run_options`: uid
1000, no capabilities, limits) start `spaceport/gpu-check:1`, which prints what NVML and
CUDA see inside the container. Only the network differs from a Space's container: the GPU
host's engine runs without a bridge or port proxy, so the check runs with `network none`.
Exit status: the check container's. See docs/gpu.md for the procedure.
"""

from __future__ import annotations

import json
import sys

from spaceport.db.models import Base, Deployment, Space
from spaceport.db.session import get_engine, session_scope
from spaceport.engine.base import ContainerSpec
from spaceport.engine.docker_backend import DockerBackend
from spaceport.engine.gpus.inventory import discover
from spaceport.lifecycle import gpu_allocator as allocator
from spaceport.lifecycle.hardware import resolve_flavor
from spaceport.settings import get_settings

IMAGE = "spaceport/gpu-check:1"


def main() -> int:
    settings = get_settings()
    settings.ensure_dirs()
    Base.metadata.create_all(get_engine())
    inventory = discover(settings)
    print(f"inventory ({settings.gpu_discovery}):", [(g.index, g.name, g.uuid) for g in inventory])
    flavor = resolve_flavor(settings, "h100" if inventory else "t4-small")
    with session_scope() as session:
        spaces = [Space(owner="check", name=f"gpu-{i}", card_data={}) for i in range(2)]
        session.add_all(spaces)
        session.flush()
        deps = [Deployment(space_id=s.id, image=IMAGE, status="starting") for s in spaces]
        session.add_all(deps)
        session.flush()
        ids = [(s.id, d.id) for s, d in zip(spaces, deps, strict=True)]
    booked = allocator.allocate(settings, ids[0][0], ids[0][1], flavor.gpus)
    print("allocated to check/gpu-0:", [(g.index, g.uuid, g.device) for g in booked])
    try:
        allocator.allocate(settings, ids[1][0], ids[1][1], flavor.gpus)
        print("check/gpu-1 also got a GPU (the node has more than one)")
    except allocator.GpuUnavailable as exc:
        print("check/gpu-1 queued:", exc)
    backend = DockerBackend(settings)
    spec = ContainerSpec(
        space_id="check/gpu-0",
        deployment_id=ids[0][1],
        image=IMAGE,
        name=f"spaceport-gpu-check-{ids[0][1]}",
        port=7860,
        cpus=flavor.cpus,
        memory_bytes=min(flavor.memory_bytes, 8 * 1024**3),
        pids=flavor.pids,
        gpus=booked,
    )
    backend.ensure_network = lambda egress=True: "none"  # type: ignore[method-assign]  # no bridge there
    options = backend._run_options(spec)
    options.pop("ports")
    options["network"] = "none"
    container = backend.client.containers.run(IMAGE, detach=True, **options)
    try:
        code = int(container.wait(timeout=120)["StatusCode"])
        host = container.attrs["HostConfig"]
        config = container.attrs["Config"]
        print(
            "container spec:",
            json.dumps(
                {
                    "User": config["User"],
                    "Env": [e for e in config["Env"] if e.startswith(("NVIDIA_", "LD_LIBRARY"))],
                    "Devices": host["Devices"],
                    "Binds": host["Binds"],
                    "CapDrop": host["CapDrop"],
                    "SecurityOpt": host["SecurityOpt"],
                },
                indent=1,
            ),
        )
        print("--- container output ---")
        print(container.logs().decode(errors="replace").rstrip())
        print(f"--- exit {code} ---")
        return code
    finally:
        container.remove(force=True)
        allocator.release(ids[0][1])


if __name__ == "__main__":
    sys.exit(main())
