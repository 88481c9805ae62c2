"""A pool GPU inside one app container, for the length of one lease (shared GPUs).

Shared-GPU apps run with every capability dropped (no CAP_MKNOD) and no GPU device node, so
their processes cannot reach a GPU by themselves. For a lease the broker (root on the host)
creates the GPU's device node (and the driver's control nodes) in the container's /dev through
/proc/PID/root (an exec cannot: the container's capability bounding set is empty); when the
lease ends it removes them and kills every process of the container that still holds the
GPU open. Outside its lease a Space's code can neither open the GPU nor keep it.

The device cgroup must allow the nodes' numbers: `device_cgroup_rules` (shared_attachment in
engine/gpus/shared.py) lets the container use exactly the pool's devices.
"""

from __future__ import annotations

import contextlib
import os
import signal
import stat
from dataclasses import dataclass
from pathlib import Path

import docker
import structlog
from docker.errors import APIError, NotFound

from spaceport.engine.base import LABEL_DEPLOYMENT, LABEL_INSTANCE, LABEL_SPACE
from spaceport.engine.gpus.inventory import Gpu
from spaceport.settings import Settings

log = structlog.get_logger(__name__)


class GateError(RuntimeError):
    """The device could not be given to (or taken from) the container; says why."""


@dataclass(frozen=True)
class DeviceNode:
    path: str  # inside the container
    major: int
    minor: int


def _node(host: str, inside: str) -> DeviceNode:
    st = os.stat(host)
    if not stat.S_ISCHR(st.st_mode):
        raise GateError(f"{host} is not a character device: check the GPU inventory")
    return DeviceNode(inside, os.major(st.st_rdev), os.minor(st.st_rdev))


def gpu_node(gpu: Gpu) -> DeviceNode:
    return _node(gpu.device, gpu.container_device)


def control_nodes(settings: Settings) -> list[DeviceNode]:
    out = []
    for entry in settings.gpu_control_devices:
        host, _, inside = entry.partition(":")
        if os.path.exists(host):
            out.append(_node(host, inside or host))
    return out


class LeaseGate:
    """Opens and closes a container's access to one pool GPU."""

    def __init__(self, settings: Settings, client: docker.DockerClient | None = None) -> None:
        self.settings = settings
        self.client = client or docker.from_env(timeout=60)

    def container(self, space_id: str, deployment_id: int) -> str:
        """The running container of that Space's deployment (the caller's own)."""
        labels = [
            f"{LABEL_INSTANCE}={self.settings.instance}",
            f"{LABEL_SPACE}={space_id}",
            f"{LABEL_DEPLOYMENT}={deployment_id}",
        ]
        found = self.client.containers.list(filters={"label": labels, "status": "running"})
        if not found:
            raise GateError(f"no running container of {space_id} (deployment {deployment_id})")
        return str(found[0].id)

    def _root(self, container_id: str) -> Path:
        """The container's root as this (host, root) process reaches it: /proc/PID/root
        resolves paths in the container's own mount namespace, its /dev included."""
        try:
            pid = int(self.client.containers.get(container_id).attrs["State"]["Pid"] or 0)
        except (APIError, NotFound) as exc:
            raise GateError(f"the container is gone: {exc}") from exc
        if pid <= 0:
            raise GateError("the container does not run")
        return Path(f"/proc/{pid}/root")

    def open(self, container_id: str, gpu: Gpu) -> str:
        """Make the GPU (and the control nodes) exist in the container; returns its path."""
        root = self._root(container_id)
        for node in [gpu_node(gpu), *control_nodes(self.settings)]:
            path = root / node.path.lstrip("/")
            try:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                old = os.umask(0)  # mode 666 as asked: no chmod, which would follow a link
                try:
                    os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(node.major, node.minor))
                finally:
                    os.umask(old)
            except OSError as exc:
                raise GateError(f"cannot create {node.path} in the container: {exc}") from exc
        return gpu.container_device

    def close(self, container_id: str, gpu: Gpu, *, keep_control: bool = False) -> list[int]:
        """Remove the GPU's node (and the control nodes, unless another lease of this
        container still needs them) and kill the container's processes that still hold the
        GPU: an open descriptor or a mapping of it, or of a control node it no longer gets.
        Returns the killed pids (host view)."""
        control = [] if keep_control else control_nodes(self.settings)
        try:
            root: Path | None = self._root(container_id)
        except GateError:
            root = None  # a container that is gone holds nothing
        if root is not None:
            for node in [gpu_node(gpu), *control]:
                with contextlib.suppress(OSError):
                    (root / node.path.lstrip("/")).unlink()
        return self.kill_holders(container_id, gpu_node(gpu), [n.path for n in control])

    def kill_holders(
        self, container_id: str, node: DeviceNode, paths: list[str] | None = None
    ) -> list[int]:
        try:
            top = self.client.containers.get(container_id).top(ps_args="-eo pid")
        except (APIError, NotFound):
            return []
        rdev = os.makedev(node.major, node.minor)
        named = {node.path, *(paths or [])}
        killed = []
        for row in top.get("Processes") or []:
            pid = int(row[0])
            if _holds(pid, rdev, named):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
        if killed:
            log.warning("zerogpu.holders_killed", container=container_id[:12], pids=killed)
        return killed


def _holds(pid: int, rdev: int, paths: set[str]) -> bool:
    """Whether the process has the GPU open (its device numbers) or open or mapped by one of
    `paths` (as the container names them; a removed node reads "path (deleted)")."""
    fds = Path(f"/proc/{pid}/fd")
    try:
        entries = list(fds.iterdir())
    except (FileNotFoundError, PermissionError):
        return False
    for fd in entries:
        try:
            st = os.stat(fd)
            target = os.readlink(fd).removesuffix(" (deleted)")
        except OSError:
            continue
        if (stat.S_ISCHR(st.st_mode) and st.st_rdev == rdev) or target in paths:
            return True
    try:
        maps = Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False
    for line in maps.splitlines():
        mapped = line.split(maxsplit=5)[5:] or [""]
        if mapped[0].removesuffix(" (deleted)") in paths:
            return True
    return False
