"""Take a deployment out of service: its container stopped and removed, its GPUs freed."""

from __future__ import annotations

from spaceport.db.models import Deployment, utcnow
from spaceport.db.session import session_scope
from spaceport.engine.base import RuntimeBackend
from spaceport.lifecycle import gpu_allocator as allocator
from spaceport.stages import DeploymentStatus


def mark_stopped(dep: Deployment, status: DeploymentStatus = DeploymentStatus.STOPPED) -> None:
    dep.status = status.value
    dep.stopped_at = dep.stopped_at or utcnow()


def retire(
    backend: RuntimeBackend,
    deployment_id: int,
    *,
    timeout: int = 10,
    status: DeploymentStatus = DeploymentStatus.STOPPED,
) -> None:
    """Mark the deployment stopped (first: the route must go before the container does)."""
    with session_scope() as session:
        dep = session.get(Deployment, deployment_id)
        if dep is None:
            return
        container = dep.container_id
        if dep.status in (
            DeploymentStatus.ACTIVE,
            DeploymentStatus.STARTING,
            DeploymentStatus.STANDBY,
        ):
            mark_stopped(dep, status)
    if container:
        backend.stop(container, timeout=timeout)
    allocator.release(deployment_id)
