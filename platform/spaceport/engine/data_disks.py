"""Size-limited /data: each Space's volume is a filesystem of its own, as big as its tier.

A plain engine volume shares the node's disk: an app filling `/data` would fill the disk every
other Space, build and database lives on. Here each volume is an ext4 filesystem in a sparse
file (`{data}/disks/{volume}.img`, only what is written takes space), mounted through a loop
device and handed to the engine as a bind volume: an app that fills it gets "No space left on
device" and nothing else notices. It needs no kernel quota support (XFS project quotas, the
other way, are often compiled out) but needs root, loop devices and `mkfs.ext4`, and an engine
that shares this machine's mounts (a local one). `SPACEPORT_DATA_DISKS=auto` uses it whenever
that holds; docs/security.md says what `off` leaves open.

A file is only ever attached to one loop device: an app container still running from before a
control-plane restart keeps its mount, and mounting the same file through a second device
would corrupt it, so an attached file is mounted from the device it already has.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from pathlib import Path

import structlog

from spaceport.settings import Settings

log = structlog.get_logger(__name__)

_TOOLS = ("mkfs.ext4", "e2fsck", "resize2fs", "mount", "umount", "losetup")

_OPTIONS = "nodev,nosuid,noinit_itable"


class DataDiskError(RuntimeError):
    pass


def unavailable_reason() -> str | None:
    """Why size-limited disks cannot be made here; None when they can."""
    if os.geteuid() != 0:
        return "the control plane does not run as root (mounting needs it)"
    if not Path("/dev/loop-control").exists():
        return "no loop devices (/dev/loop-control is missing)"
    missing = [tool for tool in _TOOLS if _tool(tool) is None]
    if missing:
        return f"missing {', '.join(missing)} (apt-get install e2fsprogs mount)"
    return None


def enabled(settings: Settings) -> bool:
    """Whether new /data volumes are size-limited disks; `on` without the means is an error."""
    if settings.data_disks == "off":
        return False
    reason = unavailable_reason()
    if reason is None:
        return True
    if settings.data_disks == "on":
        raise DataDiskError(f"SPACEPORT_DATA_DISKS=on, but {reason}")
    return False


def disks_dir(settings: Settings) -> Path:
    return settings.data / "disks"


def image_path(settings: Settings, name: str) -> Path:
    return disks_dir(settings) / f"{name}.img"


def mount_path(settings: Settings, name: str) -> Path:
    return disks_dir(settings) / name


def names(settings: Settings) -> list[str]:
    """Volumes that have a disk image on this node."""
    root = disks_dir(settings)
    return sorted(p.stem for p in root.glob("*.img")) if root.is_dir() else []


def _tool(name: str) -> str | None:
    """A system tool, also where a non-login PATH leaves out the sbin folders."""
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")


def _run(*cmd: str, ok: tuple[int, ...] = (0,)) -> str:
    done = subprocess.run(
        [_tool(cmd[0]) or cmd[0], *cmd[1:]], capture_output=True, text=True, check=False
    )
    if done.returncode not in ok:
        raise DataDiskError(f"{' '.join(cmd)} failed: {(done.stderr or done.stdout).strip()}")
    return done.stdout


def _loop_device(image: Path) -> str | None:
    """The loop device `image` is attached to, if any (`/dev/loop3: [..]:.. (/path)`)."""
    out = _run("losetup", "-j", str(image))
    return out.split(":", 1)[0].strip() or None


def ensure(settings: Settings, name: str, size_bytes: int) -> Path:
    """The volume's filesystem, made or grown to `size_bytes` and mounted; its mount point."""
    image = image_path(settings, name)
    disks_dir(settings).mkdir(parents=True, exist_ok=True)
    if not image.exists():
        _make(image, size_bytes)
    mount = mount_existing(settings, name)
    assert mount is not None  # the image exists: made above or before
    if image.stat().st_size < size_bytes:
        _grow(image, mount, size_bytes)
    return mount


def _make(image: Path, size_bytes: int) -> None:
    partial = image.with_suffix(".new")
    with partial.open("wb") as f:
        f.truncate(size_bytes)  # sparse: blocks are used as the app writes
    # No reserved blocks (the app is the only user); one inode per 64 KiB, root dir owned by
    # the app's uid; inode tables initialised lazily (never written while empty).
    _run(
        "mkfs.ext4", "-q", "-F", "-m", "0", "-i", "65536", "-L", "spaceport-data",
        "-E", "root_owner=1000:1000,lazy_itable_init=1,nodiscard", str(partial),
    )  # fmt: skip
    partial.rename(image)
    log.info("data_disk.created", image=str(image), size=size_bytes)


def mount_existing(settings: Settings, name: str) -> Path | None:
    """Mount the volume's filesystem if it has one and it is not mounted (after a reboot)."""
    image, mount = image_path(settings, name), mount_path(settings, name)
    if not image.exists():
        return None
    mount.mkdir(parents=True, exist_ok=True)
    if os.path.ismount(mount):
        return mount
    _mount(image, mount, _loop_device(image))
    return mount


def _mount(image: Path, mount: Path, device: str | None) -> None:
    """Mount through the loop device the file has, or a new one (freed again on unmount)."""
    if device:
        _run("mount", "-o", _OPTIONS, device, str(mount))
    else:
        _run("mount", "-o", f"loop,{_OPTIONS}", str(image), str(mount))
    lost = mount / "lost+found"  # what mkfs and e2fsck leave: not the app's, nor on HF
    if lost.is_dir() and not any(lost.iterdir()):
        lost.rmdir()


def _grow(image: Path, mount: Path, size_bytes: int) -> None:
    """A larger tier: the file grows, then the filesystem: online where the kernel lets us
    (root with CAP_SYS_RESOURCE), else offline, which needs the disk unused (the deployer
    stops the old container first when a disk must grow)."""
    device = _loop_device(image)
    with image.open("r+b") as f:
        f.truncate(size_bytes)
    if device is None:
        raise DataDiskError(f"{image} is not attached to a loop device: mount it first")
    _run("losetup", "-c", device)
    try:
        _run("resize2fs", device)
    except DataDiskError as online:
        _run("umount", str(mount))
        if _loop_device(image) is not None:  # still mounted by a container: not offline
            _mount(image, mount, device)
            raise DataDiskError(f"{image} is in use and cannot grow online: {online}") from None
        try:
            _run("e2fsck", "-f", "-p", str(image), ok=(0, 1))  # 1: fixed (lost+found made)
            _run("resize2fs", str(image))
        finally:
            _mount(image, mount, None)
    log.info("data_disk.grown", image=str(image), size=size_bytes)


def size(settings: Settings, name: str) -> int | None:
    """The size of the volume's disk; None when it is a plain (unlimited) volume."""
    image = image_path(settings, name)
    return image.stat().st_size if image.exists() else None


def remove(settings: Settings, name: str) -> None:
    """Unmount and delete the volume's filesystem (its engine volume is gone already)."""
    image, mount = image_path(settings, name), mount_path(settings, name)
    _unmount(image, mount, lazy=False)
    # Another remover (the API's delete and the reconciler's sweep) may be a step ahead.
    image.unlink(missing_ok=True)
    with contextlib.suppress(FileNotFoundError):
        mount.rmdir()
    log.info("data_disk.removed", volume=name)


def _unmount(image: Path, mount: Path, *, lazy: bool) -> None:
    """Unmount and free the loop device (normally freed by umount itself: autoclear).
    Unmounted meanwhile by someone else is fine; still mounted afterwards is an error."""
    if os.path.ismount(mount):
        if lazy:
            _run("umount", "-l", str(mount), ok=(0, 1, 32))
        else:
            try:
                _run("umount", str(mount))
            except DataDiskError:
                if os.path.ismount(mount):
                    raise
    device = _loop_device(image) if image.exists() else None
    if device:
        _run("losetup", "-d", device, ok=(0, 1))


def release_all(settings: Settings) -> None:
    """Unmount every disk of this node (its containers are gone): before its data dir goes."""
    for name in names(settings):
        _unmount(image_path(settings, name), mount_path(settings, name), lazy=True)
