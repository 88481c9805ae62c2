"""The node's compressed swap: a zram device that idle apps' cold pages are pushed to.

zram is a block device in RAM whose pages the kernel compresses (about 2.7x for a Python
app's heap here): swapping an idle app's untouched pages to it keeps the app running and
answering in a third of the memory, and a request just faults what it needs back in
microseconds per page. `spaceport up` sets one up where it can (root, the kernel's zram,
`mkswap`/`swapon`); an existing zram swap (the operator's own) is used as it is. Nothing else
on the node changes: app containers cannot swap by themselves (docs/configuration.md,
"Compressed memory"), only `engine/memory_squeeze.py` moves their pages there.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

SYS_BLOCK = Path("/sys/block")
ZRAM_CONTROL = Path("/sys/class/zram-control")
PRIORITY = 100  # above any disk swap: the kernel fills zram first


class ZramError(RuntimeError):
    pass


@dataclass(frozen=True)
class ZramSwap:
    """The zram swap devices of this node, together."""

    devices: list[str]
    size_bytes: int  # how many uncompressed bytes they take
    used_bytes: int  # uncompressed bytes swapped to them now
    stored_bytes: int  # RAM those pages take, compressed (zram's own overhead included)

    @property
    def free_bytes(self) -> int:
        return max(0, self.size_bytes - self.used_bytes)

    @property
    def ratio(self) -> float:
        return self.used_bytes / self.stored_bytes if self.stored_bytes else 0.0

    def describe(self) -> str:
        gib = 1024**3
        text = f"{', '.join(self.devices)}: {self.size_bytes / gib:.1f} GiB"
        if self.used_bytes:
            text += (
                f", {self.used_bytes / gib:.2f} GiB of pages in {self.stored_bytes / gib:.2f} "
                f"GiB of RAM ({self.ratio:.1f}x)"
            )
        return text


def _swaps(proc_swaps: Path = Path("/proc/swaps")) -> list[tuple[str, int, int]]:
    """(device, size, used) of each active swap; /proc/swaps counts in KiB."""
    try:
        lines = proc_swaps.read_text().splitlines()[1:]
    except OSError:
        return []
    out = []
    for line in lines:
        parts = line.split()
        if len(parts) >= 4:
            out.append((parts[0], int(parts[2]) * 1024, int(parts[3]) * 1024))
    return out


def _stored(device: str) -> int:
    """RAM a zram device uses now (mm_stat's third field, mem_used_total)."""
    try:
        fields = (SYS_BLOCK / Path(device).name / "mm_stat").read_text().split()
        return int(fields[2])
    except (OSError, IndexError, ValueError):
        return 0


def active() -> ZramSwap | None:
    """The zram devices in use as swap; None when there is none."""
    rows = [row for row in _swaps() if Path(row[0]).name.startswith("zram")]
    if not rows:
        return None
    return ZramSwap(
        devices=[row[0] for row in rows],
        size_bytes=sum(row[1] for row in rows),
        used_bytes=sum(row[2] for row in rows),
        stored_bytes=sum(_stored(row[0]) for row in rows),
    )


def unavailable_reason() -> str | None:
    """Why this node cannot set up a zram swap, or None when it can."""
    if os.geteuid() != 0:
        return "the node does not run as root"
    if not ZRAM_CONTROL.exists() and not _free_device():
        if shutil.which("modprobe") is None:
            return "the kernel has no zram module loaded (and no modprobe to load it)"
        probe = subprocess.run(["modprobe", "zram"], capture_output=True, text=True)
        if probe.returncode != 0 or not ZRAM_CONTROL.exists():
            return f"the kernel has no zram module ({probe.stderr.strip() or 'modprobe zram'})"
    for tool in ("mkswap", "swapon"):
        if shutil.which(tool) is None:
            return f"{tool} is missing (apt-get install util-linux)"
    return None


def _free_device() -> Path | None:
    """A zram device nobody set up yet (disksize 0)."""
    for dev in sorted(SYS_BLOCK.glob("zram*")):
        try:
            if (dev / "initstate").read_text().strip() == "0":
                return dev
        except OSError:
            continue
    return None


def _new_device() -> Path:
    found = _free_device()
    if found is not None:
        return found
    try:
        number = (ZRAM_CONTROL / "hot_add").read_text().strip()
    except OSError as exc:
        raise ZramError(f"could not add a zram device: {exc}") from exc
    return SYS_BLOCK / f"zram{number}"


def ensure(size_bytes: int) -> tuple[ZramSwap, bool]:
    """A zram swap of `size_bytes` (uncompressed capacity) unless one is active already;
    returns it and whether this call made it. Raises ZramError with the reason otherwise."""
    existing = active()
    if existing is not None:
        return existing, False
    reason = unavailable_reason()
    if reason is not None:
        raise ZramError(reason)
    dev = _new_device()
    node = f"/dev/{dev.name}"
    try:
        (dev / "disksize").write_text(str(size_bytes))
    except OSError as exc:  # another `up` set it up meanwhile
        if active() is not None:
            return ensure(size_bytes)
        raise ZramError(f"could not size {node}: {exc}") from exc
    for argv in (["mkswap", node], ["swapon", "-p", str(PRIORITY), node]):
        run = subprocess.run(argv, capture_output=True, text=True)
        if run.returncode != 0:
            if active() is not None:  # a concurrent `up` won the race on this device
                return ensure(size_bytes)
            raise ZramError(f"`{' '.join(argv)}` failed: {run.stderr.strip()}")
    made = active()
    if made is None:
        raise ZramError(f"{node} was set up but is not in /proc/swaps")
    return made, True


def main() -> int:
    """`python3 -m spaceport.engine.zram`: this node's zram swap as one JSON line (`{}`: none),
    for a node of a cluster, where a helper container runs this file (engine/node_helper.py)."""
    import json
    from dataclasses import asdict

    swap = active()
    print(json.dumps(asdict(swap) if swap is not None else {}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
