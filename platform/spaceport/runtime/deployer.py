"""Deploy a built image: start it beside the running version, swap traffic, stop the old one.

Zero-downtime by construction: the new container must pass readiness before the proxy moves
to it, and the old one is stopped only after the route points at the new one.
"""

from __future__ import annotations

import re

import structlog
from sqlalchemy import select

from spaceport.db.models import Build, Deployment, Space, utcnow
from spaceport.db.session import session_scope
from spaceport.flavors import get_flavor
from spaceport.proxy.sync import sync_routes
from spaceport.runtime import make_backend
from spaceport.runtime.base import LABEL_COMMIT, ContainerSpec, RuntimeBackendError
from spaceport.runtime.env import app_env, app_port
from spaceport.runtime.readiness import wait_ready
from spaceport.settings import Settings
from spaceport.stages import DeploymentStatus, Stage, starting_stage

log = structlog.get_logger(__name__)


def container_name(settings: Settings, space: Space, deployment_id: int) -> str:
    """Unique per node (several nodes may share one engine, e.g. tests) and per deployment."""
    slug = re.sub(r"[^a-z0-9_.-]", "-", f"{space.owner}-{space.name}".lower())
    return f"spaceport-{settings.instance[:6]}-{slug}-{deployment_id}"


def _tail(text: str, lines: int = 20) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def deploy(settings: Settings, space_pk: int, build_id: int | None = None) -> bool:
    """Run the image of `build_id` (default: the active deployment's image) for a Space."""
    backend = make_backend(settings)
    with session_scope() as session:
        space = session.get(Space, space_pk)
        if space is None:
            return False
        current = session.scalar(
            select(Deployment)
            .where(Deployment.space_id == space.id, Deployment.status == DeploymentStatus.ACTIVE)
            .order_by(Deployment.id.desc())
        )
        if build_id is not None:
            build = session.get(Build, build_id)
            if build is None or not build.image:
                return False
            image, commit = build.image, build.commit_sha
        elif current is not None:
            image, commit = current.image, current.commit_sha or ""
        else:
            return False
        serving = current is not None
        flavor = get_flavor(space.hardware_requested or settings.default_hardware)
        dep = Deployment(space=space, build_id=build_id, image=image, commit_sha=commit)
        session.add(dep)
        space.stage = starting_stage(serving).value
        session.flush()
        spec = ContainerSpec(
            space_id=space.space_id,
            deployment_id=dep.id,
            image=image,
            name=container_name(settings, space, dep.id),
            port=app_port(space),
            env=app_env(session, settings, space, commit),
            labels={LABEL_COMMIT: commit or ""},
            cpus=flavor.cpus,
            memory_bytes=flavor.memory_bytes,
            pids=flavor.pids,
        )
        dep_id, old_id = dep.id, current.id if current else None
        timeout = float(
            (space.card_data or {}).get("startup_timeout_s") or settings.startup_timeout_s
        )
    log.info("deploy.start", space=spec.space_id, image=image, deployment=dep_id)

    try:
        state = backend.start(spec)
        assert state.upstream, "container has no published port"
        ready = wait_ready(backend, state.id, state.upstream, timeout, settings.readiness_poll_s)
        failure = None if ready.ready else ready.reason
    except (RuntimeBackendError, AssertionError) as exc:
        state, failure = None, str(exc)

    with session_scope() as session:
        space = session.get(Space, space_pk)
        new = session.get(Deployment, dep_id)
        assert space is not None and new is not None
        if failure is not None:
            logs = backend.logs(state.id, tail=30) if state else ""
            if state:
                backend.stop(state.id, timeout=0)
            new.status = DeploymentStatus.FAILED.value
            new.error_message = failure
            message = f"{failure}\n{_tail(logs)}".strip()
            space.error_message = message
            space.stage = (Stage.RUNNING if old_id else Stage.RUNTIME_ERROR).value
            log.warning("deploy.failed", space=space.space_id, reason=failure)
            return False
        assert state is not None
        new.container_id, new.upstream = state.id, state.upstream
        new.status, new.ready_at = DeploymentStatus.ACTIVE.value, utcnow()
        space.stage, space.error_message = Stage.RUNNING.value, None
        space.hardware_current = space.hardware_requested
        old = session.get(Deployment, old_id) if old_id else None
        old_container = old.container_id if old else None
        if old is not None:
            old.status, old.stopped_at = DeploymentStatus.STOPPED.value, utcnow()
    sync_routes(settings)
    if old_container:
        backend.stop(old_container, timeout=10)
    log.info("deploy.ready", space=spec.space_id, upstream=state.upstream)
    return True
