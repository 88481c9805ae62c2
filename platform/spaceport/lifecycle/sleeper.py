"""Sleep and wake: idle Spaces give their CPU, then their memory, back; a visitor wakes them.

Before either, an idle RUNNING Space is compressed (lifecycle/compressor.py: its app's cold
memory in zram, after `compress_after_s`; it stays RUNNING and answers at once). Then two
tiers, both shown as stage SLEEPING:
- light sleep: after `light_sleep_s` idle (or half the sleep time, if sooner) the container is
  frozen (cgroup freezer: memory kept, no CPU). It keeps its route: the first request reaches
  the frozen container and `thaw.ThawWatcher` thaws it within milliseconds. (Where this
  process cannot see the container's sockets, the route is dropped instead and the status
  page's `wake` thaws it.)
- full sleep: after the sleep time (`gcTimeout`) the container is stopped, its GPUs freed, its
  route dropped (`desired` = sleeping): visitors reach the status page, which calls `wake`,
  and a new container starts from the same image (or, where the node keeps one, the Space's
  wake standby takes over: an interpreter that already imported the SDK; wake_standby.py).

Idle time counts from the last request the proxy saw (`Space.last_request_at`), or from the
moment the deployment became ready when there was none since.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

import structlog
from redis.lock import Lock
from sqlalchemy import CursorResult, Update, select, update
from sqlalchemy.orm import Session

from spaceport import telemetry
from spaceport.db.models import Deployment, Space, utcnow
from spaceport.db.queries import active_deployment
from spaceport.db.session import session_scope
from spaceport.engine import make_backend
from spaceport.engine.base import RuntimeBackend, RuntimeBackendError
from spaceport.lifecycle import gpu_allocator as allocator
from spaceport.lifecycle import jobs, node_pool, wake_standby
from spaceport.lifecycle.deployer import (
    StartCancelled,
    check_wanted,
    deploy,
    deploy_locked,
    startup_timeout,
)
from spaceport.lifecycle.desired import Desired
from spaceport.lifecycle.locks import (
    is_locked,
    renew,
    space_lock,
    start_queued,
    start_running,
)
from spaceport.lifecycle.proxy_routes import sync_routes
from spaceport.lifecycle.readiness import wait_ready
from spaceport.lifecycle.retire import retire
from spaceport.lifecycle.thaw import thaw, watchable
from spaceport.settings import Settings
from spaceport.stages import DeploymentStatus, Stage

log = structlog.get_logger(__name__)

RUNNING, SLEEPING = Desired.RUNNING.value, Desired.SLEEPING.value


def _changed(session: Session, statement: Update) -> int:
    """Rows an UPDATE changed: a conditional UPDATE is how one caller claims a transition."""
    return int(cast(CursorResult[Any], session.execute(statement)).rowcount)


def sleep_after_s(settings: Settings, sleep_time: int | None) -> float | None:
    """Seconds of idleness before the full sleep; None: this Space never sleeps.

    A Space's own sleep time wins (-1: never); without one, the node's `default_sleep_s`."""
    value = sleep_time if sleep_time is not None else settings.default_sleep_s
    return float(value) if value is not None and value > 0 else None


MIN_AWAKE_S = 3.0
"""No freeze sooner after readiness: an app may still finish its start after it first answers
(Gradio's launch() checks its own URL then; frozen during that check, it fails it when thawed,
with a wall-clock timeout, and exits: found by bench/bench_density.py)."""


def freeze_after_s(settings: Settings, sleep_after: float | None) -> float | None:
    if sleep_after is None or settings.light_sleep_s <= 0:
        return None
    return max(MIN_AWAKE_S, min(float(settings.light_sleep_s), sleep_after / 2))


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
                Space.stage,
                Space.sleep_time,
                Space.last_request_at,
                Deployment.id,
                Deployment.ready_at,
                Deployment.container_id,
            )
            .join(Deployment, Deployment.space_id == Space.id)
            .where(
                Deployment.status == DeploymentStatus.ACTIVE,
                Space.desired.in_((RUNNING, SLEEPING)),
            )
        ).all()
    # Which sleeping Spaces' containers still run (frozen): one engine call for all of them,
    # not an inspect each (a dense node has hundreds deep asleep, their containers stopped).
    live = backend.running_of(c for _, d, *_, c in rows if d == SLEEPING and c)
    for space_pk, desired, stage, sleep_time, last_request, dep_id, ready_at, container in rows:
        full = sleep_after_s(settings, sleep_time)
        idle = idle_s(now, last_request, ready_at)
        if desired == SLEEPING:  # off the route table: stop what still runs (frozen)
            if container in live and (full is None or idle >= full):
                _deep_sleep(settings, backend, space_pk)
            continue
        if full is None or is_locked(settings, space_pk):
            continue
        light = freeze_after_s(settings, full)
        if idle >= full:
            _deep_sleep(settings, backend, space_pk)
        elif stage == Stage.RUNNING and light is not None and idle >= light:
            _freeze(settings, backend, space_pk, dep_id, container)


def _freeze(
    settings: Settings, backend: RuntimeBackend, space_pk: int, dep_id: int, container: str | None
) -> None:
    if not container:
        return
    keep_route = watchable(backend.node_ops().pid(container))
    with space_lock(settings, space_pk, wait_s=0) as lock:
        if lock is None:
            return
        values: dict[str, Any] = {"stage": Stage.SLEEPING.value}
        if not keep_route:
            values["desired"] = SLEEPING  # the status page must see the visitors
        with session_scope() as session:
            claimed = _changed(
                session,
                update(Space)
                .where(
                    Space.id == space_pk,
                    Space.desired == RUNNING,
                    Space.stage == Stage.RUNNING.value,
                )
                .values(**values),
            )
        if not claimed:
            return
        if not keep_route:
            sync_routes(settings)
        try:
            backend.pause(container)
            log.info("sleep.frozen", space_pk=space_pk, keeps_route=keep_route)
            telemetry.count("spaceport_sleeps", settings=settings, tier="frozen")
        except RuntimeBackendError as exc:
            log.warning("sleep.freeze_failed", space_pk=space_pk, error=str(exc))
            with session_scope() as session:
                session.execute(
                    update(Space)
                    .where(Space.id == space_pk)
                    .values(desired=RUNNING, stage=Stage.RUNNING.value)
                )
            if not keep_route:
                sync_routes(settings)


def _deep_sleep(
    settings: Settings, backend: RuntimeBackend, space_pk: int, wait_s: float = 0
) -> None:
    """Stop the container (frozen or not) and drop the route; a visitor starts it again.
    `wait_s`: how long a start holding the Space's lock (finishing) is waited for.

    A CPU Space's container is kept, stopped: starting it again reuses what the app wrote at
    its first start (Python's bytecode: seconds of a Gradio app's start). A GPU Space's is
    removed, and its devices freed for others.
    """
    with space_lock(settings, space_pk, wait_s=wait_s) as lock:
        if lock is None:
            return
        with session_scope() as session:
            current = active_deployment(session, space_pk)  # (a start may have ended meanwhile)
            if current is None:
                return
            dep_id = current.id
            claimed = _changed(
                session,
                update(Space)
                .where(Space.id == space_pk, Space.desired.in_((RUNNING, SLEEPING)))
                .values(desired=SLEEPING, stage=Stage.SLEEPING.value),
            )
            if claimed:
                # A stopped container's IP goes back to the engine, and another Space's next
                # container may get it: the route must not point there once the Space is
                # woken, until the restarted container says where it is (`_resume`).
                session.execute(
                    update(Deployment).where(Deployment.id == dep_id).values(upstream=None)
                )
        if not claimed:
            return
        telemetry.count("spaceport_sleeps", settings=settings, tier="stopped")
        sync_routes(settings)
        with session_scope() as session:
            dep = session.get(Deployment, dep_id)
            container = dep.container_id if dep else None
            image = dep.image if dep else None
        if container and not allocator.assigned(dep_id, settings):
            try:
                backend.halt(container)
                log.info("sleep.stopped", space_pk=space_pk, kept=True)
                if image:
                    node_pool.prepare_wake(settings, backend, space_pk, image)
                return
            except RuntimeBackendError as exc:
                log.warning("sleep.halt_failed", space_pk=space_pk, error=str(exc))
        retire(backend, dep_id)
        log.info("sleep.stopped", space_pk=space_pk, kept=False)


PUT_TO_SLEEP_WAIT_S = 10.0


def put_to_sleep(settings: Settings, space_pk: int, *, deep: bool) -> bool:
    """Sleep now, as if idle long enough (operators, benchmarks); False if it does not run."""
    backend = make_backend(settings)
    with session_scope() as session:
        dep = active_deployment(session, space_pk)
        space = session.get(Space, space_pk)
        if dep is None or space is None or space.desired not in (RUNNING, SLEEPING):
            return False
        dep_id, container, stage = dep.id, dep.container_id, space.stage
    if deep:  # asked for now: a start finishing (retiring its old version) is waited for
        _deep_sleep(settings, backend, space_pk, wait_s=PUT_TO_SLEEP_WAIT_S)
    elif stage == Stage.RUNNING:
        _freeze(settings, backend, space_pk, dep_id, container)
    return True


def wake(settings: Settings, space_pk: int) -> bool:
    """Start waking a sleeping Space and return at once; False if it was not asleep.

    Safe to call for every visitor request: only the first call of a sleep does anything.
    """
    with session_scope() as session:
        now = utcnow()
        space = session.get(Space, space_pk)
        if space is None or space.stage != Stage.SLEEPING:
            return False
        if space.desired == RUNNING:  # light sleep, route kept: thaw
            dep = active_deployment(session, space_pk)
            if dep is None or not dep.container_id:
                return False
            container = dep.container_id
            jobs.submit(settings, f"thaw:{space_pk}", _thaw, settings, space_pk, container)
            return True
        claimed = _changed(
            session,
            update(Space)
            .where(Space.id == space_pk, Space.desired == SLEEPING)
            .values(desired=RUNNING, stage=Stage.APP_STARTING.value, last_request_at=now),
        )
    if not claimed:
        return False
    start_queued(settings, space_pk)  # its stopped container is no crash meanwhile
    jobs.submit(settings, f"wake:{space_pk}", finish_wake, settings, space_pk, now)
    return True


def _thaw(settings: Settings, space_pk: int, container: str) -> bool:
    return thaw(make_backend(settings), space_pk, container)


def _resume(
    settings: Settings,
    backend: RuntimeBackend,
    space_pk: int,
    dep_id: int,
    container: str,
    lock: Lock,
) -> bool:
    """Thaw a frozen container, or start the kept one again; True once it serves."""
    try:
        state = backend.inspect(container)
        if state is None:
            return False
        if state.paused or state.running:
            backend.unpause(container)
        else:
            state = backend.restart(container)
            if not state.upstream:
                return False
            with session_scope() as session:
                space = session.get(Space, space_pk)
                timeout = startup_timeout(settings, space) if space else 60.0

            def heartbeat() -> None:
                renew(lock)
                check_wanted(space_pk)  # paused, stopped or deleted meanwhile: give up

            ready = wait_ready(
                backend, container, state.upstream, timeout, settings.readiness_poll_s, heartbeat
            )
            if not ready.ready:
                log.warning("wake.resume_failed", space_pk=space_pk, reason=ready.reason)
                return False
    except (RuntimeBackendError, StartCancelled) as exc:
        log.warning("wake.resume_failed", space_pk=space_pk, error=repr(exc))
        return False
    with session_scope() as session:
        space = session.get(Space, space_pk)
        dep = session.get(Deployment, dep_id)
        if space is None or dep is None or space.desired != RUNNING:
            return False
        if state is not None and state.upstream:
            dep.upstream, dep.node = state.upstream, state.node or None
        dep.ready_at = utcnow()
    try:
        sync_routes(settings)
    finally:  # RUNNING means reachable (a held visitor is sent on then): said once routed
        with session_scope() as session:
            session.execute(
                update(Space)
                .where(Space.id == space_pk, Space.desired == RUNNING)
                .values(stage=Stage.RUNNING.value, error_message=None)
            )
    log.info("wake.resumed", space_pk=space_pk)
    return True


def finish_wake(settings: Settings, space_pk: int, requested_at: datetime) -> bool:
    """Thaw the frozen container (milliseconds) or start a new one (the app's start time);
    a wake that serves is counted (tier `stopped`: the visitor waited for a start)."""
    woke = _finish_wake(settings, space_pk, requested_at)
    if woke:
        seconds = max(0.0, (utcnow() - requested_at).total_seconds())
        telemetry.count("spaceport_wakes", settings=settings, tier="stopped")
        telemetry.observe(
            "spaceport_wake_duration_seconds", seconds, settings=settings, tier="stopped"
        )
    return woke


def _finish_wake(settings: Settings, space_pk: int, requested_at: datetime) -> bool:
    try:
        return _wake_locked(settings, space_pk, requested_at)
    finally:  # (the lock said it was under way meanwhile)
        start_running(settings, space_pk)


def _wake_locked(settings: Settings, space_pk: int, requested_at: datetime) -> bool:
    backend = make_backend(settings)
    with space_lock(settings, space_pk, wait_s=30) as lock:
        if lock is not None:
            with session_scope() as session:
                space = session.get(Space, space_pk)
                dep = active_deployment(session, space_pk)
                dep_id = dep.id if dep else None
                container = dep.container_id if dep else None
                image = dep.image if dep else None
                if space is None or space.desired != RUNNING:
                    return False
            if dep_id is not None and node_pool.ready_for(settings, backend, space_pk):
                # Into a pool container (its SDK already imported), under this same lock: the
                # stopped one stays the Space's version until that one serves, then goes.
                return deploy_locked(settings, space_pk, lock, requested_at=requested_at)
            if dep_id is not None and image and wake_standby.waiting(backend, space_pk, image):
                pass  # the deploy below takes the wake standby (its SDK already imported)
            elif (
                container
                and dep_id
                and _resume(settings, backend, space_pk, dep_id, container, lock)
            ):
                return True
            if dep_id is not None:
                retire(backend, dep_id)
    return deploy(settings, space_pk, requested_at=requested_at)
