"""Each app container's CPU time and memory, read from its cgroup files (what `docker stats`
reports, without its cost).

`docker stats` asks the engine, which samples each container for a second or more before it
answers; the kernel already keeps the same numbers in the container's cgroup, a file read
away. A container's cgroup is found from its first process (`/proc/<pid>/cgroup`), which
works whatever the engine's cgroup driver (cgroupfs, systemd) or parent is:
- cgroup v2: `cpu.stat` (`usage_usec`) and `memory.current`;
- cgroup v1: `cpuacct.usage` (nanoseconds) and `memory.usage_in_bytes`.
Memory is counted as `docker stats` counts it: less the inactive page cache (`inactive_file`),
which the kernel gives back first. A container whose cgroup is not visible here (the control
plane in a container of its own) has no numbers: the caller shows none rather than zeros. A
container on another cluster node is read through its node's engine (`usage_from_stats`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from spaceport.engine.base import LABEL_SPACE, RuntimeBackend, Usage

__all__ = ["Usage", "space_usage", "usage_from_stats", "usage_of"]

CGROUP_ROOT = Path("/sys/fs/cgroup")


def _cgroups(pid: int, root: Path) -> dict[str, Path]:
    """The cgroup directory of `pid` per controller ("" for v2's unified hierarchy)."""
    out: dict[str, Path] = {}
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        rel = path.lstrip("/")
        if not controllers:
            out[""] = root / rel
            continue
        for controller in controllers.split(","):
            # A mount per controller (`cpuacct`) or one per group of them (`cpu,cpuacct`).
            for mount in (controllers, controller):
                if (root / mount / rel).is_dir():
                    out[controller] = root / mount / rel
                    break
    return out


def _stat(path: Path) -> dict[str, int]:
    out: dict[str, int] = {}
    for line in path.read_text().splitlines():
        key, _, value = line.partition(" ")
        if value.strip().isdigit():
            out[key] = int(value)
    return out


def usage_of(pid: int, root: Path = CGROUP_ROOT) -> Usage | None:
    """The CPU time and memory of the cgroup holding `pid`, or None where it cannot be read."""
    try:
        groups = _cgroups(pid, root)
        if "cpuacct" in groups and "memory" in groups:  # v1
            cpu = int((groups["cpuacct"] / "cpuacct.usage").read_text()) / 1e9
            mem = int((groups["memory"] / "memory.usage_in_bytes").read_text())
            cache = _stat(groups["memory"] / "memory.stat").get("total_inactive_file", 0)
        elif "" in groups and (groups[""] / "memory.current").exists():  # v2
            cpu = _stat(groups[""] / "cpu.stat").get("usage_usec", 0) / 1e6
            mem = int((groups[""] / "memory.current").read_text())
            cache = _stat(groups[""] / "memory.stat").get("inactive_file", 0)
        else:
            return None
    except (OSError, ValueError):
        return None  # the process is gone, or its cgroup is not visible from here
    return Usage(cpu, max(0, mem - cache))


def usage_from_stats(stats: Mapping[str, Any]) -> Usage | None:
    """The same numbers from the engine's stats of a container (`GET /containers/{id}/stats`,
    one-shot: no second sample), for a container on another machine; None when it has none
    (a stopped container)."""
    cpu = ((stats.get("cpu_stats") or {}).get("cpu_usage") or {}).get("total_usage")
    memory = stats.get("memory_stats") or {}
    if cpu is None or "usage" not in memory:
        return None
    inner = memory.get("stats") or {}
    cache = inner.get("inactive_file", inner.get("total_inactive_file", 0))  # (v2, v1)
    return Usage(int(cpu) / 1e9, max(0, int(memory["usage"]) - int(cache)))


def space_usage(
    backend: RuntimeBackend, owners: Mapping[str, str] | None = None
) -> dict[str, Usage]:
    """Each Space's running containers' usage, summed (a swap runs two for a moment), by id.
    `owners`: the Space of containers that carry no Space label (taken from the node pool)."""
    live = [c for c in backend.list() if c.running or c.paused]
    usage = backend.node_ops().usage(live)
    out: dict[str, Usage] = {}
    for container in live:
        space_id = container.labels.get(LABEL_SPACE) or (owners or {}).get(container.id)
        use = usage.get(container.id)
        if space_id and use is not None:
            out[space_id] = out[space_id] + use if space_id in out else use
    return out
