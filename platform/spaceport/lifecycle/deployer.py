"""Deploy a Space's image: start it beside the running version, swap traffic, stop the old one.

Zero-downtime by construction: the new container must pass readiness before the proxy moves
to it, and the old one is drained and stopped only after the route points at the new one.
GPU Spaces are recreated instead (old one first) so that one device is enough. One deploy
at a time per Space (`locks`); a failure keeps the serving version, or reports RUNTIME_ERROR
with the app's last lines and schedules a retry with backoff (`crashes`). A start gives up as
soon as its Space no longer wants to run (paused, stopped, deleted: `StartCancelled`), removing
what it started, so that whoever holds the Space next finds nothing of it.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import structlog
from redis.lock import Lock
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from spaceport import telemetry
from spaceport.db.models import Build, Deployment, Space, utcnow
from spaceport.db.queries import active_deployment
from spaceport.db.session import session_scope
from spaceport.engine import make_backend
from spaceport.engine.base import (
    ContainerSpec,
    ContainerState,
    RuntimeBackend,
    RuntimeBackendError,
)
from spaceport.engine.gpus.attach import GpuConfigError, check_mode
from spaceport.flavors import Flavor, UnknownFlavor
from spaceport.lifecycle import gpu_allocator as allocator
from spaceport.lifecycle import node_pool, standby
from spaceport.lifecycle.crashes import needs_owner, record_failure
from spaceport.lifecycle.desired import Desired, resting_stage
from spaceport.lifecycle.hardware import parse_duration, resolve_flavor
from spaceport.lifecycle.locks import renew, space_lock
from spaceport.lifecycle.masking import mask, secret_values
from spaceport.lifecycle.proxy_routes import sync_routes
from spaceport.lifecycle.readiness import wait_ready
from spaceport.lifecycle.retire import mark_stopped, retire
from spaceport.lifecycle.spec import container_spec
from spaceport.lifecycle.storage import tier_bytes
from spaceport.settings import Settings
from spaceport.stages import BuildStatus, DeploymentStatus, Stage, starting_stage

log = structlog.get_logger(__name__)

STARTING = (Stage.APP_STARTING.value, Stage.RUNNING_APP_STARTING.value)


class StartCancelled(Exception):
    """The Space stopped wanting this start (paused, stopped or deleted meanwhile)."""


def wanted(space_pk: int) -> bool:
    """Whether the Space still exists and should run (what every start checks as it goes)."""
    with session_scope() as session:
        space = session.get(Space, space_pk)
        return space is not None and space.desired == Desired.RUNNING


def check_wanted(space_pk: int) -> None:
    if not wanted(space_pk):
        raise StartCancelled


def tail(text: str, lines: int = 20) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def release_image(session: Session, space: Space) -> tuple[str, str, int | None] | None:
    """What a restart runs: the newest built image, else the last one that ran."""
    build = session.scalar(
        select(Build)
        .where(
            Build.space_id == space.id,
            Build.status == BuildStatus.SUCCEEDED,
            Build.image.is_not(None),
        )
        .order_by(Build.id.desc())
    )
    if build is not None and build.image:
        return build.image, build.commit_sha, build.id
    dep = session.scalar(
        select(Deployment).where(Deployment.space_id == space.id).order_by(Deployment.id.desc())
    )
    return (dep.image, dep.commit_sha or "", dep.build_id) if dep else None


def startup_timeout(settings: Settings, space: Space) -> float:
    card = space.card_data or {}
    value = parse_duration(card.get("startup_duration_timeout"))
    return value if value and value > 0 else float(settings.startup_timeout_s)


@dataclass
class Plan:
    space_pk: int
    space_id: str
    dep_id: int
    spec: ContainerSpec
    flavor: Flavor
    old_id: int | None
    old_container: str | None
    timeout: float
    secrets: list[str]
    storage_bytes: int | None  # the /data tier's size; None: no storage
    planned_at: datetime
    container: str | None = None  # the new version's container, once created
    taken: bool = False  # a standby or pool container: it starts at STARTING_CPU_SHARES
    since: datetime | None = None  # the visitor's request (a wake) or the plan: marks count from it
    marks: dict[str, int] = field(default_factory=dict)  # ms from `since` to each step

    def mark(self, step: str) -> None:
        """When `step` was done, logged with deploy.ready: where a start spends its time."""
        if self.since is not None:
            self.marks[step] = round((utcnow() - self.since).total_seconds() * 1000)


def deploy(
    settings: Settings,
    space_pk: int,
    build_id: int | None = None,
    *,
    requested_at: datetime | None = None,
) -> bool:
    """Run `build_id`'s image (default: the Space's release) for a Space that should run.

    `requested_at`: skip when a deployment started after that moment is already serving
    (several restart requests collapse into one). Returns True when the new version serves.
    """
    with space_lock(settings, space_pk, wait_s=settings.startup_timeout_s + 60) as lock:
        if lock is None:
            log.warning("deploy.lock_timeout", space_pk=space_pk)
            return False
        return deploy_locked(settings, space_pk, lock, build_id, requested_at=requested_at)


def deploy_locked(
    settings: Settings,
    space_pk: int,
    lock: Lock,
    build_id: int | None = None,
    *,
    requested_at: datetime | None = None,
) -> bool:
    """`deploy`, by a caller that holds the Space's lock (a wake that chose how it starts)."""
    backend = make_backend(settings)
    plan = _plan(settings, space_pk, build_id, requested_at)
    if plan is None:
        return False

    def heartbeat() -> None:
        renew(lock)
        check_wanted(space_pk)

    result = "failed"
    try:
        served = _run(settings, backend, plan, heartbeat)
        result = "served" if served else "failed"
        return served
    except StartCancelled:
        result = "cancelled"
        _cancelled(backend, plan)
        return False
    except Exception as exc:  # never leave a STARTING row or a booked GPU behind
        log.exception("deploy.crashed", space=plan.space_id)
        _fail(settings, backend, plan, None, f"internal error while starting: {exc}")
        return False
    finally:
        telemetry.count("spaceport_deploys", settings=settings, result=result)


def _plan(
    settings: Settings, space_pk: int, build_id: int | None, requested_at: datetime | None
) -> Plan | None:
    planned_at = utcnow()  # requests made before this are served by this deployment
    with session_scope() as session:
        space = session.get(Space, space_pk)
        if space is None:
            return None
        if space.desired != Desired.RUNNING:
            resting = resting_stage(space.desired)
            if resting is not None and space.stage in STARTING:  # e.g. a build ended meanwhile
                space.stage = resting.value
            return None
        current = active_deployment(session, space_pk)
        if (
            requested_at is not None
            and build_id is None
            and current is not None
            and current.created_at >= requested_at
        ):  # a start after the request already happened: the request is served
            if space.retry_at is not None and space.retry_at <= current.created_at:
                space.retry_at = None
                if space.stage in STARTING:
                    space.stage = Stage.RUNNING.value
            return None
        if build_id is not None:
            build = session.get(Build, build_id)
            if build is None or not build.image:
                return None
            release: tuple[str, str, int | None] | None = (build.image, build.commit_sha, build_id)
        else:
            release = release_image(session, space)
        if release is None:
            return None
        image, commit, release_build = release
        try:
            flavor = resolve_flavor(settings, space.hardware_requested)
        except UnknownFlavor as exc:
            needs_owner(space, str(exc))
            return None
        dep = Deployment(
            space=space,
            build_id=release_build,
            image=image,
            commit_sha=commit,
            created_at=planned_at,
        )
        session.add(dep)
        space.stage = starting_stage(current is not None).value
        session.flush()
        spec = container_spec(session, settings, space, dep.id, image, commit, flavor)
        plan = Plan(
            space_pk=space.id,
            space_id=space.space_id,
            dep_id=dep.id,
            spec=spec,
            flavor=flavor,
            old_id=current.id if current else None,
            old_container=current.container_id if current else None,
            timeout=startup_timeout(settings, space),
            secrets=secret_values(session, settings, space.id),
            storage_bytes=tier_bytes(settings, space.storage) if space.storage else None,
            planned_at=planned_at,
            since=requested_at or planned_at,
        )
    plan.mark("planned")  # (a wake: the wait for a deploy thread, the lock and the pool's list)
    return plan


def _retire_old_first(settings: Settings, backend: RuntimeBackend, plan: Plan) -> None:
    """Recreate instead of swap: the old version stops before the new one starts (it holds
    something the new one needs: its GPUs, or a /data disk that must grow while unused)."""
    if plan.old_id is None:
        return
    with session_scope() as session:
        old = session.get(Deployment, plan.old_id)
        if old is not None:
            mark_stopped(old)
        space = session.get(Space, plan.space_pk)
        if space is not None and space.stage == Stage.RUNNING_APP_STARTING:
            space.stage = Stage.APP_STARTING.value  # nothing serves until the new one does
    sync_routes(settings)
    retire(backend, plan.old_id)
    plan.old_id = plan.old_container = None


def _book_gpus(settings: Settings, backend: RuntimeBackend, plan: Plan, space_pk: int) -> bool:
    """Recreate: the old version gives its devices back first; then book the new ones."""
    _retire_old_first(settings, backend, plan)
    try:
        gpus = allocator.allocate(settings, space_pk, plan.dep_id, plan.flavor.gpus)
        check_mode(settings)  # the engine can give them in the node's GPU mode
        plan.spec.gpus = gpus
    except allocator.GpuUnavailable as exc:
        with session_scope() as session:
            space = session.get(Space, space_pk)
            dep = session.get(Deployment, plan.dep_id)
            if dep is not None:
                session.delete(dep)
            if space is not None:
                space.error_message = str(exc)
                if exc.permanent:
                    needs_owner(space, str(exc))
                else:  # queued: keeps its place (oldest retry_at first)
                    space.stage = Stage.APP_STARTING.value
                    space.retry_at = space.retry_at or utcnow()
        log.info("deploy.gpu_wait", space=plan.space_id, reason=str(exc))
        return False
    except GpuConfigError as exc:
        _fail(settings, backend, plan, None, str(exc))
        return False
    return True


def _run(
    settings: Settings, backend: RuntimeBackend, plan: Plan, heartbeat: Callable[[], None]
) -> bool:
    if plan.old_container:  # a frozen (light-sleeping) version serves until the swap
        with contextlib.suppress(RuntimeBackendError):
            backend.unpause(plan.old_container)
    if plan.flavor.gpus and not _book_gpus(settings, backend, plan, plan.space_pk):
        return False
    if plan.storage_bytes and plan.spec.data_volume:
        size = backend.node_ops().volume_size(plan.spec.data_volume)
        if size is not None and size < plan.storage_bytes:  # a larger tier: the disk grows
            _retire_old_first(settings, backend, plan)
        check_wanted(plan.space_pk)  # (stopping the old version took a while)
        try:
            backend.node_ops().ensure_volume(
                plan.spec.data_volume, plan.space_id, plan.spec.image, plan.storage_bytes
            )
        except RuntimeBackendError as exc:
            _fail(settings, backend, plan, None, str(exc))
            return False
    check_wanted(plan.space_pk)
    log.info("deploy.start", space=plan.space_id, image=plan.spec.image, deployment=plan.dep_id)
    try:
        state = None if plan.flavor.gpus else _take_standby(settings, backend, plan)
        taken = state is not None
        state = state or backend.start(plan.spec)
    except RuntimeBackendError as exc:
        _fail(settings, backend, plan, None, str(exc))
        return False
    plan.container, plan.taken = state.id, taken
    plan.mark("taken" if taken else "created")
    check_wanted(plan.space_pk)
    with session_scope() as session:
        dep = session.get(Deployment, plan.dep_id)
        if dep is not None:
            dep.container_id, dep.upstream = state.id, state.upstream
            dep.node = state.node or None
    if not state.upstream:
        # A container that exits at once shows no port binding: report the exit, not the port.
        current = backend.inspect(state.id)
        if current is not None and not current.running:
            reason = f"The app exited (code {current.exit_code}) before answering HTTP"
        else:
            reason = "the container published no port"
        _fail(settings, backend, plan, state.id, reason)
        return False
    ready = wait_ready(
        backend,
        state.id,
        state.upstream,
        plan.timeout,
        settings.readiness_poll_s,
        on_poll=heartbeat,
    )
    if not ready.ready:
        _fail(settings, backend, plan, state.id, ready.reason)
        return False
    plan.mark("answered")
    return _promote(settings, backend, plan, state.upstream)


def _take_standby(settings: Settings, backend: RuntimeBackend, plan: Plan) -> ContainerState | None:
    """The Space's standby container, with the new version moved in (lifecycle/standby.py),
    else a container of the node pool (lifecycle/node_pool.py); None when none fits. With a
    standby, the plan's deployment becomes the standby's row."""
    taken = standby.take(backend, plan.space_pk, plan.dep_id, plan.spec)
    if taken is None:
        return _take_pooled(settings, backend, plan)
    plan.dep_id, state = taken
    log.info("deploy.standby_taken", space=plan.space_id, container=state.name)
    return state


def _take_pooled(settings: Settings, backend: RuntimeBackend, plan: Plan) -> ContainerState | None:
    state = node_pool.take(settings, backend, plan.dep_id, plan.spec)
    if state is not None:
        log.info("deploy.pool_taken", space=plan.space_id, container=state.name)
    return state


def _promote(settings: Settings, backend: RuntimeBackend, plan: Plan, upstream: str) -> bool:
    with session_scope() as session:
        new = session.get(Deployment, plan.dep_id)
        space = session.get(Space, new.space_id) if new is not None else None
        keep = new is not None and space is not None and space.desired == Desired.RUNNING
        if new is not None and space is not None and keep:
            new.status, new.ready_at, new.upstream = (
                DeploymentStatus.ACTIVE.value,
                utcnow(),
                upstream,
            )
            space.error_message = None
            if space.retry_at is not None and space.retry_at <= plan.planned_at:
                space.retry_at = None  # else a newer start request is still to be served
            space.hardware_current = space.hardware_requested
            old = session.get(Deployment, plan.old_id) if plan.old_id else None
            if old is not None:
                mark_stopped(old)
    if not keep:  # paused, stopped or deleted while starting: the new one must not serve
        raise StartCancelled
    try:
        sync_routes(settings)
    finally:  # RUNNING means reachable: said only once the route is in (or being retried)
        with session_scope() as session:
            session.execute(
                update(Space)
                .where(
                    Space.id == plan.space_pk,
                    Space.desired == Desired.RUNNING.value,
                    Space.retry_at.is_(None),
                )
                .values(stage=Stage.RUNNING.value)
            )
    plan.mark("routed")
    log.info("deploy.ready", space=plan.space_id, upstream=upstream, timings_ms=plan.marks)
    if plan.taken and plan.container:  # it serves: no longer ahead of the other apps
        try:
            backend.node_ops().set_cpu_shares(plan.container, standby.SERVING_CPU_SHARES)
        except RuntimeBackendError as exc:
            log.warning("deploy.cpu_weight_kept", space=plan.space_id, error=str(exc))
    if plan.old_id is not None:
        before = backend.inspect(plan.old_container) if plan.old_container else None
        if before is not None and (before.running or before.paused):
            time.sleep(settings.drain_s)  # requests already sent to the old one finish
        retire(backend, plan.old_id)  # (a stopped one, a deep sleep's, served none)
    return True


def _cancelled(backend: RuntimeBackend, plan: Plan) -> None:
    """The Space no longer wants this start: remove what it started (its row may be gone with
    a deleted Space, so by the container's id too) and free its GPUs; no failure recorded."""
    retire(backend, plan.dep_id, timeout=0)
    if plan.container:
        backend.stop(plan.container, timeout=0)
    log.info("deploy.cancelled", space=plan.space_id, deployment=plan.dep_id)


def _fail(
    settings: Settings,
    backend: RuntimeBackend,
    plan: Plan,
    container_id: str | None,
    reason: str,
) -> None:
    logs = mask(backend.logs(container_id, tail=30), plan.secrets) if container_id else ""
    with session_scope() as session:
        dep = session.get(Deployment, plan.dep_id)
        if dep is not None:
            dep.error_message = reason
            mark_stopped(dep, DeploymentStatus.FAILED)
    retire(backend, plan.dep_id, timeout=0, status=DeploymentStatus.FAILED)
    message = f"{reason}\n{tail(logs)}".strip()
    serving = plan.old_id is not None
    with session_scope() as session:
        space = session.get(Space, plan.space_pk)
        if space is None or space.desired != Desired.RUNNING:
            return  # deleted, paused or stopped meanwhile: not a failure of the app
        if serving:  # the previous version keeps serving: report, do not retry
            space.stage, space.retry_at = Stage.RUNNING.value, None
            space.error_message = f"The new version did not start: {message}"
        else:
            record_failure(settings, space, message, immediate=False)
    log.warning("deploy.failed", space=plan.space_id, reason=reason)
