"""The contract between the control plane and whatever runs containers.

Methods are synchronous: the docker SDK is, and both callers (Celery tasks, the reconciler
thread) are happy to block. Shape after JupyterHub's Spawner: start, stop, poll, logs.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

LABEL_SPACE = "org.spaceport.space"
LABEL_COMMIT = "org.spaceport.commit"
LABEL_DEPLOYMENT = "org.spaceport.deployment"
LABEL_MANAGED = "org.spaceport.managed"
LABEL_INSTANCE = "org.spaceport.instance"


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
    gpu_devices: list[str] = field(default_factory=list)
    data_volume: str | None = None


@dataclass
class ContainerState:
    id: str
    name: str
    running: bool
    status: str
    exit_code: int | None
    upstream: str | None
    labels: dict[str, str]


class RuntimeBackendError(RuntimeError):
    pass


class RuntimeBackend(ABC):
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
        """Stop and remove a container; no error if it is gone."""

    @abstractmethod
    def logs(self, container_id: str, tail: int = 50) -> str:
        """The container's last output lines."""

    @abstractmethod
    def list(self, space_id: str | None = None) -> list[ContainerState]:
        """Containers this platform manages, optionally of one Space."""

    @abstractmethod
    def remove_image(self, image: str) -> None:
        """Delete an image; no error if it is gone or in use."""
