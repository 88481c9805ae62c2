"""Push a running container's cold memory to the node's zram swap, through its memory cgroup.

The app keeps running and answering: only pages it does not touch go, compressed, and a page
it touches again faults back in (microseconds). Two kernels' ways:
- cgroup v2: `memory.reclaim` (the kernel's own proactive reclaim). Containers get no swap
  (`memory.swap.max` = memswap - memory = 0), so it is raised to what should go for the moment
  of the reclaim and set back: what went stays in zram, and the app still cannot swap by
  itself.
- cgroup v1 (no `memory.reclaim`): the limit squeeze. `memory.limit_in_bytes` is lowered to
  about what the app needs to keep (the kernel reclaims down to it, swapping anonymous pages),
  then set back to the container's own limit at once. The memory+swap limit stays as the
  engine set it (equal to the memory limit), so the app's RAM and swap together never exceed
  its flavor's memory, and on its own the app never swaps (the memsw limit is always reached
  first: the kernel then reclaims without swapping).
Never an OOM kill: nothing happens when the app has little to move or zram has too little
room; during the squeeze the cgroup's OOM killer is off (an allocation waits instead of
killing), and the limit and the OOM setting are restored in a `finally`.
"""

from __future__ import annotations

import errno
import time
from dataclasses import dataclass
from pathlib import Path

from spaceport.engine import zram

CGROUP_ROOT = Path("/sys/fs/cgroup")
MiB = 1024**2
MIN_GAIN = 8 * MiB  # less anonymous memory than this: not worth a squeeze
KEEP = 12 * MiB  # what the squeeze leaves resident at least (the app's hottest pages)
ZRAM_MARGIN = 256 * MiB  # zram room never used, so the node's own swapping still has some


class SqueezeSkipped(Exception):
    """Nothing was done, and why (a normal answer, not a failure)."""


@dataclass(frozen=True)
class Squeezed:
    moved_bytes: int  # swapped to zram by this squeeze (uncompressed)
    resident_bytes: int  # the cgroup's memory afterwards (what `docker stats` shows)
    seconds: float


def memory_cgroup(pid: int, root: Path = CGROUP_ROOT, container_id: str = "") -> Path:
    """The memory cgroup directory of a process (v1 `memory` controller, or v2's unified), in
    the cgroup tree mounted at `root`; with `container_id`, only if it is that container's
    (the pid was read a moment ago: the process may be gone and its number someone else's)."""
    try:
        lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    except OSError as exc:
        raise SqueezeSkipped(f"process {pid} is gone") from exc
    v1 = [line.split(":", 2)[2] for line in lines if line.split(":")[1:2] == ["memory"]]
    if v1:
        path = root / "memory" / v1[0].lstrip("/")
    else:
        v2 = [line.split(":", 2)[2] for line in lines if line.startswith("0::")]
        if not v2:
            raise SqueezeSkipped("no memory cgroup found for the container")
        path = root / v2[0].lstrip("/")
    if container_id and container_id not in path.name:
        raise SqueezeSkipped(f"process {pid} is no longer the container's (its cgroup: {path})")
    if not path.is_dir():
        raise SqueezeSkipped(f"{path} is not visible here (the control plane in a container?)")
    return path


def _stat(cgroup: Path) -> dict[str, int]:
    out = {}
    for line in (cgroup / "memory.stat").read_text().splitlines():
        key, _, value = line.partition(" ")
        if value.strip().isdigit():
            out[key] = int(value)
    return out


def _write(path: Path, value: str) -> None:
    with path.open("w") as f:
        f.write(value)


def squeeze(
    pid: int, limit_bytes: int, cgroup_root: Path = CGROUP_ROOT, container_id: str = ""
) -> Squeezed:
    """Move what the container with main process `pid` does not touch to zram; `limit_bytes` is
    its own memory limit (what the engine set), which it gets back whatever happens."""
    swap = zram.active()
    if swap is None:
        raise SqueezeSkipped("the node has no zram swap (spaceport doctor)")
    cgroup = memory_cgroup(pid, cgroup_root, container_id)
    started = time.monotonic()
    if (cgroup / "memory.limit_in_bytes").exists():
        moved = _squeeze_v1(cgroup, limit_bytes, swap.free_bytes)
        resident = int((cgroup / "memory.usage_in_bytes").read_text())
    else:
        moved = _reclaim_v2(cgroup, swap.free_bytes)
        resident = int((cgroup / "memory.current").read_text())
    resident -= _stat(cgroup).get("total_inactive_file", _stat(cgroup).get("inactive_file", 0))
    return Squeezed(moved, max(0, resident), time.monotonic() - started)


def _wanted(anon: int, zram_free: int) -> int:
    """Bytes to push out of `anon`; raises SqueezeSkipped when it is not worth it or not safe."""
    want = anon - KEEP
    if want < MIN_GAIN:
        raise SqueezeSkipped(f"only {anon / MiB:.0f} MiB of anonymous memory: nothing to gain")
    if zram_free - ZRAM_MARGIN < want:
        raise SqueezeSkipped(f"zram nearly full ({zram_free / MiB:.0f} MiB free)")
    return want


def _squeeze_v1(cgroup: Path, limit_bytes: int, zram_free: int) -> int:
    stat = _stat(cgroup)
    anon = stat.get("total_rss", 0) + stat.get("total_shmem", 0)
    want = _wanted(anon, zram_free)
    usage = int((cgroup / "memory.usage_in_bytes").read_text())
    limit_file, oom_file = cgroup / "memory.limit_in_bytes", cgroup / "memory.oom_control"
    oom_was = "oom_kill_disable 1" in oom_file.read_text()
    target = max(KEEP, usage - want)
    try:
        if not oom_was:
            _write(oom_file, "1")
        try:
            _write(limit_file, str(target))
        except OSError as exc:  # EBUSY: the kernel could not get that low; what went, went
            if exc.errno != errno.EBUSY:
                raise
    finally:
        _write(limit_file, str(limit_bytes))
        if not oom_was:
            _write(oom_file, "0")
    return max(0, _stat(cgroup).get("total_swap", 0) - stat.get("total_swap", 0))


def _reclaim_v2(cgroup: Path, zram_free: int) -> int:
    stat = _stat(cgroup)
    want = _wanted(stat.get("anon", 0) + stat.get("shmem", 0), zram_free)
    swap_file = cgroup / "memory.swap.max"
    swap_was = swap_file.read_text().strip() if swap_file.exists() else None
    swapped = int((cgroup / "memory.swap.current").read_text()) if swap_was else 0
    try:
        if swap_was is not None and swap_was != "max":
            _write(swap_file, str(swapped + want))
        try:
            _write(cgroup / "memory.reclaim", str(want))
        except OSError as exc:  # EAGAIN: less than asked could go
            if exc.errno != errno.EAGAIN:
                raise
    finally:
        if swap_was is not None and swap_was != "max":
            _write(swap_file, swap_was)
    after = int((cgroup / "memory.swap.current").read_text()) if swap_was else 0
    return max(0, after - swapped)


def main(argv: list[str]) -> int:
    """`python3 -m spaceport.engine.memory_squeeze PID LIMIT [CGROUP_ROOT [CONTAINER_ID]]`: the
    squeeze on a node of a cluster, where a helper container runs this file
    (engine/node_helper.py) with the node's cgroups at CGROUP_ROOT; prints what it did as one
    JSON line. Stdlib only, so that any Python 3 on the node runs it. Told to stop (SIGTERM),
    it still puts the limit back (the squeeze's `finally`)."""
    import json
    import signal
    import sys

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    root = Path(argv[2]) if len(argv) > 2 else CGROUP_ROOT
    container = argv[3] if len(argv) > 3 else ""
    try:
        done = squeeze(int(argv[0]), int(argv[1]), root, container)
    except SqueezeSkipped as exc:
        print(json.dumps({"skipped": str(exc)}))
    else:
        print(json.dumps({"moved_bytes": done.moved_bytes, "resident_bytes": done.resident_bytes}))
    return 0


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1:]))
