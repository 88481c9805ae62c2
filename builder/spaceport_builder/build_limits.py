"""Resource limits for builds: memory, processes and CPU weight of BuildKit's step containers.

Docker 20.10's built-in BuildKit ignores `docker build --memory/--cgroup-parent`: every RUN
step runs in a cgroup under `docker/buildkit`. So the limits are set on that parent cgroup and
hold for all builds running on the node together (the worker runs `concurrency` of them):
`settings.build_memory` of memory, BUILD_PIDS processes, and a lower CPU weight than apps so
a build never starves the apps that serve traffic. The time limit is per build (image_build).
Needs write access to the cgroup filesystem (root); without it, builds run unlimited and the
log says so.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from spaceport.flavors import Flavor
from spaceport.settings import Settings

CGROUP_ROOT = Path("/sys/fs/cgroup")
BUILDKIT_CGROUP = "docker/buildkit"
BUILD_PIDS = 4096
CPU_SHARES = 512  # cgroup v1; apps get the default 1024
CPU_WEIGHT = 50  # cgroup v2; apps get the default 100


@dataclass(frozen=True)
class Limit:
    path: Path
    value: str


def memory_bytes(memory: str) -> int:
    return Flavor("build", cpus=1, memory=memory).memory_bytes


def planned_limits(settings: Settings, root: Path = CGROUP_ROOT) -> list[Limit]:
    """The cgroup files to write, for cgroup v2 (unified) or v1 (one tree per controller)."""
    mem = str(memory_bytes(settings.build_memory))
    if (root / "cgroup.controllers").exists():  # v2
        base = root / BUILDKIT_CGROUP
        return [
            Limit(base / "memory.max", mem),
            Limit(base / "pids.max", str(BUILD_PIDS)),
            Limit(base / "cpu.weight", str(CPU_WEIGHT)),
        ]
    return [
        Limit(root / "memory" / BUILDKIT_CGROUP / "memory.limit_in_bytes", mem),
        Limit(root / "pids" / BUILDKIT_CGROUP / "pids.max", str(BUILD_PIDS)),
        Limit(root / "cpu" / BUILDKIT_CGROUP / "cpu.shares", str(CPU_SHARES)),
    ]


def apply_build_limits(
    settings: Settings, log: Callable[[str], None], root: Path = CGROUP_ROOT
) -> list[Limit]:
    """Set the limits (creating the cgroup when BuildKit has not yet); returns those applied."""
    applied: list[Limit] = []
    for limit in planned_limits(settings, root):
        try:
            if not limit.path.parent.is_dir():
                limit.path.parent.mkdir(parents=True)
            current = limit.path.read_text().strip()
            if current != limit.value:
                limit.path.write_text(limit.value)
            applied.append(limit)
        except OSError as exc:
            log(f"note: build limit {limit.path.name}={limit.value} not applied ({exc})")
    return applied
