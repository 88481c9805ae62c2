"""The contract between the control plane and whatever runs containers.

Two interfaces, in Spaceport's own types (no engine SDK object crosses them):
- `RuntimeBackend`: workloads, what any engine (one Docker host, a Swarm, Kubernetes) can do:
  start one from a spec, stop, pause/resume, status and address, logs. Shape after
  JupyterHub's Spawner.
- `NodeOps`: what only the engine of one node can do (a process id, files copied into a
  running container, CPU shares, image layers, volumes, writable-layer sizes). A cluster
  backend runs these on the node that holds the container (its node agent); a single engine
  is its own node (`node_ops()` returns itself).

Methods are synchronous: the docker SDK is, and both callers (Celery tasks, the reconciler
thread) are happy to block.
"""

from __future__ import annotations

import builtins
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

from spaceport.engine.gpus.inventory import Gpu

LABEL_SPACE = "org.spaceport.space"
LABEL_COMMIT = "org.spaceport.commit"
LABEL_DEPLOYMENT = "org.spaceport.deployment"
LABEL_MANAGED = "org.spaceport.managed"
LABEL_INSTANCE = "org.spaceport.instance"
LABEL_SPACE_PK = "org.spaceport.space-pk"
"""On built images: the Space's row id, so images of deleted Spaces can be found and removed."""


@dataclass
class ContainerSpec:
    space_id: str
    deployment_id: int
    image: str
    name: str
    port: int
    env: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    cpus: float = 2
    memory_bytes: int = 16 * 1024**3
    pids: int = 2048
    gpus: builtins.list[Gpu] | None = None  # the devices booked for it (gpu_allocator)
    shared_gpu: bool = False  # a shared-GPU flavor: the broker lends a pool GPU per call
    data_volume: str | None = None
    command: list[str] | None = None  # None: the image's own CMD
    cpu_shares: int | None = None  # CPU weight against other containers (None: the default)
    runtime: str | None = None  # OCI runtime (None: the node's app_runtime, else the engine's)
    egress: bool = True  # False: on the apps' network without outbound access
    # Names resolving to this node's public entry point inside the app (lifecycle/env.py).
    node_hosts: list[str] = field(default_factory=list)


@dataclass
class ContainerState:
    id: str
    name: str
    running: bool
    status: str
    exit_code: int | None
    upstream: str | None
    labels: dict[str, str]
    paused: bool = False
    oom_killed: bool = False
    created: str = ""
    node: str = ""  # the cluster node it runs on ("" on a single engine)
    reason: str = ""  # why it does not run, when the engine knows more than an exit code
    pid: int = 0  # its first process on this node (0: not running, or on another node)


@dataclass
class ImageRef:
    id: str
    tags: list[str]
    labels: dict[str, str]


@dataclass
class NodeInfo:
    """One machine of a cluster, as the admin view shows it."""

    name: str
    state: str  # ready, down, unknown
    availability: str  # active, pause, drain
    role: str  # manager, worker
    address: str
    cpus: float
    memory_bytes: int
    gpus: list[tuple[str, str]]  # (device id, the Space holding it or "")
    spaces: list[str]  # the Spaces with a container there


@dataclass(frozen=True)
class Usage:
    """A container's CPU time and memory, as `docker stats` reports them."""

    cpu_seconds: float  # CPU time since the container started, all its processes
    memory_bytes: int  # resident memory less inactive page cache (as `docker stats`)

    def __add__(self, other: Usage) -> Usage:
        return Usage(self.cpu_seconds + other.cpu_seconds, self.memory_bytes + other.memory_bytes)


@dataclass
class Compressed:
    """What `NodeOps.compress_memory` did: bytes of the container's memory moved to the node's
    compressed swap (0, with the reason, when it skipped), and its memory afterwards."""

    moved_bytes: int
    resident_bytes: int = 0
    skipped: str = ""


class LogStream(Protocol):
    """Raw output chunks of a container, live; `close()` ends the iteration from any thread."""

    def __iter__(self) -> Iterator[bytes]: ...

    def close(self) -> None: ...


class RuntimeBackendError(RuntimeError):
    pass


class RuntimeBackend(ABC):
    """Workloads: what any engine can do with a Space's containers."""

    @abstractmethod
    def create(self, spec: ContainerSpec) -> ContainerState:
        """Create a container without starting it (what `start` does first)."""

    @abstractmethod
    def start(self, spec: ContainerSpec) -> ContainerState:
        """Create and start a container; returns once the engine says it runs."""

    @abstractmethod
    def inspect(self, container_id: str) -> ContainerState | None:
        """Current state, or None when the container no longer exists."""

    @abstractmethod
    def restart(self, container_id: str) -> ContainerState:
        """Start a stopped container again (same image, same config)."""

    @abstractmethod
    def stop(self, container_id: str, timeout: int = 10) -> None:
        """Stop and remove a container (frozen or not); no error if it is gone."""

    @abstractmethod
    def halt(self, container_id: str, timeout: int = 10) -> None:
        """Stop a container but keep it (its writable layer: compiled bytecode, caches)."""

    @abstractmethod
    def pause(self, container_id: str) -> None:
        """Freeze every process of the container: memory kept, no CPU."""

    @abstractmethod
    def unpause(self, container_id: str) -> None:
        """Thaw a frozen container; no error if it is not frozen."""

    @abstractmethod
    def logs(self, container_id: str, tail: int = 50) -> str:
        """The container's last output lines."""

    @abstractmethod
    def stream_logs(self, container_id: str, tail: int | str = "all") -> LogStream:
        """The container's output with timestamps, from `tail` lines back, then live."""

    @abstractmethod
    def list(self, space_id: str | None = None, label: str | None = None) -> list[ContainerState]:
        """Containers this platform manages, optionally of one Space, or with a label."""

    def running_of(self, container_ids: Iterable[str]) -> set[str]:
        """Which of these containers run or are frozen. A reconciler pass asks this of every
        sleeping Space's kept container (hundreds on a dense node): one call where the engine
        answers `live_states` in one."""
        return set(self.live_states(container_ids))

    def live_states(self, container_ids: Iterable[str]) -> dict[str, ContainerState]:
        """The states of those of these containers that run or are frozen, by id (the others
        are left out: ask `inspect` for why). The crash check asks this of every awake
        Space's container each pass; an engine that answers in one call overrides this
        one-inspect-each default."""
        out = {}
        for container_id in container_ids:
            state = self.inspect(container_id)
            if state is not None and (state.running or state.paused):
                out[container_id] = state
        return out

    def took(self, container_id: str, spec: ContainerSpec) -> None:
        """A running container (a standby, lifecycle/standby.py) was just told to run `spec`'s
        version instead of the one it was made for. An engine whose restart or move makes a
        new container (a Swarm task) makes it of `spec` from then on; one that starts the same
        container again (docker: the code and the go file are in its writable layer) needs
        nothing."""
        return None

    @abstractmethod
    def node_ops(self) -> NodeOps:
        """This node's engine, for what only it can do (engine/base.py, `NodeOps`)."""

    def nodes(self) -> builtins.list[NodeInfo]:
        """The cluster's machines; [] for an engine that is one machine (the admin view
        describes that one itself)."""
        return []

    def move_volume(self, name: str, node: str, image: str) -> None:
        """Copy a stopped Space's /data volume to another node (with `image`, which has
        `tar`), and make that node its home; the old copy is removed."""
        raise RuntimeBackendError("this engine is one machine: /data has nowhere to move")

    def set_availability(self, node: str, availability: str) -> None:
        """`drain` a node (its Spaces move elsewhere, none lands there) or make it `active`."""
        raise RuntimeBackendError("this engine is one machine: there is no node to drain")


class NodeOps(ABC):
    """What only the engine of the node holding a container (or image, volume) can do."""

    @abstractmethod
    def pid(self, container_id: str) -> int | None:
        """The container's main process id on the engine's host (None if not running)."""

    @abstractmethod
    def usage(self, containers: Iterable[ContainerState]) -> dict[str, Usage]:
        """The CPU time and memory of these running containers, by id (those that cannot be
        read are left out: the caller shows none rather than zeros)."""

    @abstractmethod
    def writable_sizes(self) -> dict[str, int]:
        """Bytes each running container of this node wrote to its own files (its writable
        layer, volumes not counted), by container id."""

    @abstractmethod
    def remove_image(self, image: str) -> None:
        """Delete an image; no error if it is gone or in use."""

    @abstractmethod
    def images(self) -> builtins.list[ImageRef]:
        """The app images this node's builds made."""

    @abstractmethod
    def ensure_volume(self, name: str, space_id: str, image: str, size_bytes: int) -> None:
        """Create the Space's persistent volume (writable by uid 1000) unless it exists; where
        volumes can be size-limited, make it (or grow it to) `size_bytes`."""

    @abstractmethod
    def volume_size(self, name: str) -> int | None:
        """The size limit of a volume; None when it has none (or does not exist)."""

    @abstractmethod
    def remove_volume(self, name: str) -> None:
        """Delete a volume; no error if it is gone."""

    @abstractmethod
    def volumes(self) -> builtins.list[str]:
        """Names of the volumes this platform manages on this node."""

    @abstractmethod
    def image_layers(self, image: str) -> builtins.list[str]:
        """The image's filesystem layers, base first ([] when the image is missing)."""

    @abstractmethod
    def image_command(self, image: str) -> builtins.list[str]:
        """The image's CMD."""

    @abstractmethod
    def copy_from_image(
        self, image: str, path: str, container_id: str, then: dict[str, bytes] | None = None
    ) -> None:
        """Copy the directory `path` of `image` into the same place of a running container,
        then write the files `then` (path: content, owned by uid 1000) in the same step."""

    def keep_image_dir(self, image: str, path: str) -> None:
        """Make a later `copy_from_image` of this directory quick (a node that keeps the
        archive: docker's); raises RuntimeBackendError when the image cannot be read."""
        return None

    @abstractmethod
    def put_file(self, container_id: str, path: str, data: bytes) -> None:
        """Write a file (owned by uid 1000) into a running container."""

    @abstractmethod
    def set_cpu_shares(self, container_id: str, shares: int) -> None:
        """Change a running container's CPU weight."""

    @abstractmethod
    def set_limits(
        self, container_id: str, cpus: float, memory_bytes: int, cpu_shares: int
    ) -> None:
        """Give a running container of the node pool its Space's flavor's CPU and memory
        limits and a CPU weight, in one call (lifecycle/node_pool.py)."""

    @abstractmethod
    def rename(self, container_id: str, name: str) -> None:
        """Give a running container of the node pool its Space's name."""

    @abstractmethod
    def compress_memory(self, container_id: str) -> Compressed:
        """Push the memory a running container does not touch to the node's compressed swap
        (zram): it keeps running and answering, and faults pages back as it touches them.
        Never kills it; skips (saying why) when there is little to gain or no room."""
