"""Sleep and wake: idle Spaces give their CPU, then their memory, back; a visitor wakes them.

Two tiers, both shown as SLEEPING and both off the route table (visitors reach the status page,
which calls `wake`):
- light sleep: after `light_sleep_s` idle (or half the sleep time, if sooner) the container is
  frozen (cgroup freezer: memory kept, no CPU); waking thaws it in milliseconds.
- full sleep: after the sleep time (`gcTimeout`) the container is stopped and its GPUs freed;
  waking starts a new container from the same image.

Idle time counts from the last request the proxy saw (`Space.last_request_at`), or from the
moment the deployment became ready when there was none since.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

import structlog
from sqlalchemy import CursorResult, Update, select, update
from sqlalchemy.orm import Session

from spaceport.db.models import Deployment, Space, utcnow
from spaceport.db.session import session_scope
from spaceport.proxy.sync import sync_routes
from spaceport.runtime import jobs, make_backend
from spaceport.runtime.base import RuntimeBackend, RuntimeBackendError
from spaceport.runtime.desired import Desired
from spaceport.runtime.locks import is_locked, space_lock
from spaceport.runtime.retire import retire
from spaceport.settings import Settings
from spaceport.stages import DeploymentStatus, Stage

log = structlog.get_logger(__name__)


def _changed(session: Session, statement: Update) -> int:
    """Rows an UPDATE changed: a conditional UPDATE is how one caller claims a transition."""
    return int(cast(CursorResult[Any], session.execute(statement)).rowcount)


def sleep_after_s(settings: Settings, sleep_time: int | None) -> float | None:
    """Seconds of idleness before the full sleep; None: this Space never sleeps."""
    value = sleep_time if sleep_time is not None else settings.default_sleep_time_s
    return float(value) if value is not None and value > 0 else None


def freeze_after_s(settings: Settings, sleep_after: float | None) -> float | None:
    if sleep_after is None or settings.light_sleep_s <= 0:
        return None
    return min(float(settings.light_sleep_s), sleep_after / 2)


def idle_s(now: datetime, last_request: datetime | None, ready_at: datetime | None) -> float:
    marks = [m for m in (last_request, ready_at) if m is not None]
    return (now - max(marks)).total_seconds() if marks else 0.0


def check_sleep(settings: Settings, backend: RuntimeBackend) -> None:
    """Freeze or stop the Spaces that have been idle long enough."""
    now = utcnow()
    with session_scope() as session:
        rows = session.execute(
            select(
                Space.id,
                Space.desired,
                Space.sleep_time,
                Space.last_request_at,
                Deployment.id,
                Deployment.ready_at,
                Deployment.container_id,
            )
            .join(Deployment, Deployment.space_id == Space.id)
            .where(
                Deployment.status == DeploymentStatus.ACTIVE,
                Space.desired.in_((Desired.RUNNING.value, Desired.SLEEPING.value)),
            )
        ).all()
    for space_pk, desired, sleep_time, last_request, dep_id, ready_at, container in rows:
        full = sleep_after_s(settings, sleep_time)
        if desired == Desired.SLEEPING:
            state = backend.inspect(container) if container else None
            gone = state is None or not (state.paused or state.running)
            if gone or (full is not None and idle_s(now, last_request, ready_at) >= full):
                _deep_sleep(settings, backend, space_pk, dep_id)
            continue
        if full is None or is_locked(settings, space_pk):
            continue
        idle = idle_s(now, last_request, ready_at)
        light = freeze_after_s(settings, full)
        if idle >= full:
            _fall_asleep(settings, backend, space_pk, dep_id, freeze=False)
        elif light is not None and idle >= light:
            _fall_asleep(settings, backend, space_pk, dep_id, freeze=True)


def _fall_asleep(
    settings: Settings, backend: RuntimeBackend, space_pk: int, dep_id: int, *, freeze: bool
) -> None:
    with space_lock(settings, space_pk, wait_s=0) as lock:
        if lock is None:
            return
        with session_scope() as session:
            claimed = _changed(
                session,
                update(Space)
                .where(Space.id == space_pk, Space.desired == Desired.RUNNING.value)
                .values(desired=Desired.SLEEPING.value, stage=Stage.SLEEPING.value),
            )
            dep = session.get(Deployment, dep_id)
            container = dep.container_id if dep else None
        if not claimed:
            return
        sync_routes(settings)  # visitors now reach the status page, which wakes it
        if freeze and container:
            try:
                backend.pause(container)
                log.info("sleep.frozen", space_pk=space_pk)
                return
            except RuntimeBackendError as exc:
                log.warning("sleep.freeze_failed", space_pk=space_pk, error=str(exc))
        retire(backend, dep_id)
        log.info("sleep.stopped", space_pk=space_pk)


def _deep_sleep(settings: Settings, backend: RuntimeBackend, space_pk: int, dep_id: int) -> None:
    with space_lock(settings, space_pk, wait_s=0) as lock:
        if lock is None:
            return
        with session_scope() as session:
            space = session.get(Space, space_pk)
            if space is None or space.desired != Desired.SLEEPING:
                return
        retire(backend, dep_id)
        log.info("sleep.stopped", space_pk=space_pk)


def wake(settings: Settings, space_pk: int) -> bool:
    """Start waking a sleeping Space and return at once; False if it was not asleep.

    Safe to call for every visitor request: only the first call of a sleep does anything.
    """
    with session_scope() as session:
        claimed = _changed(
            session,
            update(Space)
            .where(Space.id == space_pk, Space.desired == Desired.SLEEPING.value)
            .values(
                desired=Desired.RUNNING.value,
                stage=Stage.APP_STARTING.value,
                last_request_at=utcnow(),
            ),
        )
    if not claimed:
        return False
    jobs.submit(settings, f"wake:{space_pk}", finish_wake, settings, space_pk, utcnow())
    return True


def finish_wake(settings: Settings, space_pk: int, requested_at: datetime) -> bool:
    """Thaw the frozen container (milliseconds) or start a new one (the app's start time)."""
    backend = make_backend(settings)
    with space_lock(settings, space_pk, wait_s=30) as lock:
        if lock is not None:
            with session_scope() as session:
                space = session.get(Space, space_pk)
                dep = session.scalar(
                    select(Deployment)
                    .where(
                        Deployment.space_id == space_pk,
                        Deployment.status == DeploymentStatus.ACTIVE,
                    )
                    .order_by(Deployment.id.desc())
                )
                container = dep.container_id if dep else None
                if space is None or space.desired != Desired.RUNNING:
                    return False
            state = backend.inspect(container) if container else None
            if container and state is not None and (state.paused or state.running):
                try:
                    backend.unpause(container)
                    with session_scope() as session:
                        space = session.get(Space, space_pk)
                        if space is not None:
                            space.stage, space.error_message = Stage.RUNNING.value, None
                    sync_routes(settings)
                    log.info("wake.thawed", space_pk=space_pk)
                    return True
                except RuntimeBackendError as exc:
                    log.warning("wake.thaw_failed", space_pk=space_pk, error=str(exc))
            if dep is not None:
                retire(backend, dep.id)
    from spaceport.runtime.deployer import deploy

    return deploy(settings, space_pk, requested_at=requested_at)
