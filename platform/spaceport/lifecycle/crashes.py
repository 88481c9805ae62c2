"""Crash handling: an app that exits, or fails to start, is reported and restarted with backoff.

The Space shows RUNTIME_ERROR with the app's last lines (secrets masked) until a start works.
An app that ran for a while and then died (a dockerd restart, an OOM after hours) is restarted
at once; one that keeps failing waits 5 s, 10 s, 20 s... up to `crash_backoff_max_s`. The
owner's restart clears the count.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import structlog
from pydantic import ByteSize
from sqlalchemy import select

from spaceport import telemetry
from spaceport.db.models import Deployment, Space, utcnow
from spaceport.db.session import session_scope
from spaceport.engine.base import ContainerState, RuntimeBackend
from spaceport.lifecycle.desired import Desired
from spaceport.lifecycle.locks import is_locked
from spaceport.lifecycle.masking import mask, secret_values
from spaceport.lifecycle.proxy_routes import try_sync_routes
from spaceport.lifecycle.retire import retire
from spaceport.settings import Settings
from spaceport.stages import DeploymentStatus, Stage

log = structlog.get_logger(__name__)

STABLE_S = 60  # ran at least this long: the next crash counts as the first
OVERDUE_S = 30  # a start requested this long ago and not begun: its starter died


def backoff_s(settings: Settings, count: int) -> float:
    """Delay before automatic attempt number `count` + 1 (count >= 1 failures so far)."""
    return float(
        min(settings.crash_backoff_max_s, settings.crash_backoff_s * 2 ** max(0, count - 1))
    )


def record_failure(settings: Settings, space: Space, message: str, *, immediate: bool) -> float:
    """RUNTIME_ERROR with `message`, and the next automatic attempt scheduled; returns its delay."""
    space.crash_count = (space.crash_count or 0) + 1
    telemetry.count(
        "spaceport_space_restarts", settings=settings, space=space.space_id, cause="crash"
    )
    delay = 0.0 if immediate else backoff_s(settings, space.crash_count)
    space.stage = Stage.RUNTIME_ERROR.value
    note = (
        f"(failure {space.crash_count}: restarting automatically in {delay:.0f} s; "
        "restart the Space to try now)"
    )
    space.error_message = f"{message}\n{note}".strip()
    space.retry_at = utcnow() + timedelta(seconds=delay)
    return delay


def needs_owner(space: Space, message: str) -> None:
    """RUNTIME_ERROR that no automatic retry can fix (a flavor this node cannot give): the
    Space waits for its owner to change the hardware or restart it."""
    space.stage, space.error_message, space.retry_at = Stage.RUNTIME_ERROR.value, message, None


def check_containers(settings: Settings, backend: RuntimeBackend) -> list[int]:
    """Look at the container of every Space that should run; returns the Spaces that crashed."""
    with session_scope() as session:
        rows = session.execute(
            select(
                Space.id,
                Space.stage,
                Deployment.id,
                Deployment.container_id,
                Deployment.upstream,
                Deployment.node,
            )
            .join(Deployment, Deployment.space_id == Space.id)
            .where(
                Deployment.status == DeploymentStatus.ACTIVE,
                Space.desired == Desired.RUNNING.value,
            )
        ).all()
    crashed, any_moved = [], False
    live = backend.live_states(c for *_, c, _, _ in rows if c)  # one engine call (docker)
    for space_pk, stage, dep_id, container_id, upstream, node in rows:
        if not container_id or is_locked(settings, space_pk):
            continue
        state = live.get(container_id) or backend.inspect(container_id)  # (not live: why)
        if state is not None and state.paused:
            if stage != Stage.SLEEPING:  # frozen, yet woken meanwhile (a push, an owner)
                backend.unpause(container_id)
            continue
        if state is not None and state.running:
            moved = state.upstream != upstream or (state.node or None) != node
            if state.upstream and moved:
                with session_scope() as session:
                    dep = session.get(Deployment, dep_id)
                    if dep is not None:  # moved: a cluster node's failure, a restart
                        dep.upstream, dep.node = state.upstream, state.node or None
                any_moved = True
            continue
        _crashed(settings, backend, space_pk, dep_id, container_id, state)
        crashed.append(space_pk)
    if any_moved or crashed:  # the proxy follows now (a crashed one's address is freed)
        try_sync_routes(settings)
    return crashed


def _crashed(
    settings: Settings,
    backend: RuntimeBackend,
    space_pk: int,
    dep_id: int,
    container_id: str,
    st: ContainerState | None,
) -> None:
    if st is None:
        reason = "The app's container disappeared"
    elif st.reason:
        reason = st.reason
    else:
        oom = ", out of memory" if st.oom_killed else ""
        reason = f"The app exited (code {st.exit_code}{oom})"
    # When the engine says why (its node is down), there are no lines to read from it.
    logs = st is not None and not st.reason
    _failed(settings, backend, space_pk, dep_id, container_id, reason, logs=logs)


def _failed(
    settings: Settings,
    backend: RuntimeBackend,
    space_pk: int,
    dep_id: int,
    container_id: str,
    reason: str,
    *,
    logs: bool,
) -> None:
    """The deployment failed for `reason`: RUNTIME_ERROR with the app's last lines, its
    container removed, the next start scheduled."""
    logs_text = backend.logs(container_id, tail=30) if logs else ""
    with session_scope() as session:
        space = session.get(Space, space_pk)
        dep = session.get(Deployment, dep_id)
        if space is None or dep is None:
            return
        if space.desired != Desired.RUNNING.value or dep.status != DeploymentStatus.ACTIVE:
            return  # paused, stopped or replaced since the look: its container was stopped
        last = "\n".join(logs_text.strip().splitlines()[-20:])
        lines = mask(last, secret_values(session, settings, space_pk))
        ran_s = (utcnow() - dep.ready_at).total_seconds() if dep.ready_at else 0.0
        if ran_s >= STABLE_S:
            space.crash_count = 0
        dep.error_message = reason
        dep.status, dep.stopped_at = DeploymentStatus.FAILED.value, utcnow()
        delay = record_failure(
            settings, space, f"{reason}\n{lines}".strip(), immediate=ran_s >= STABLE_S
        )
        space_id = space.space_id
    retire(backend, dep_id, timeout=0, status=DeploymentStatus.FAILED)
    log.warning("runtime.crashed", space=space_id, reason=reason, retry_in_s=delay)


_last_disk_check = 0.0


def check_writable_layers(settings: Settings, backend: RuntimeBackend) -> list[int]:
    """Stop every running app that wrote more than `app_writable_max` to its own files outside
    /data, as a failure with that reason: its container (and the bytes) removed, the app
    restarted from its image. Measured every `app_writable_check_s`; returns those Spaces.

    The engine's per-container disk quota needs overlay2 on XFS with project quotas; this
    check is the limit every engine can give (Kubernetes enforces ephemeral storage the same
    way), so a fast writer can exceed it by what it writes between two checks."""
    global _last_disk_check
    every = settings.app_writable_check_s
    if every <= 0 or time.monotonic() - _last_disk_check < every:
        return []
    _last_disk_check = time.monotonic()
    sizes = backend.node_ops().writable_sizes()
    limit = int(settings.app_writable_max)
    over = {cid: size for cid, size in sizes.items() if size > limit}
    if not over:
        return []
    with session_scope() as session:
        rows = session.execute(
            select(Space.id, Deployment.id, Deployment.container_id)
            .join(Deployment, Deployment.space_id == Space.id)
            .where(
                Deployment.status == DeploymentStatus.ACTIVE,
                Deployment.container_id.in_(list(over)),
                Space.desired == Desired.RUNNING.value,
            )
        ).all()
    stopped = []
    for space_pk, dep_id, container_id in rows:
        if container_id is None or is_locked(settings, space_pk):
            continue
        reason = (
            f"The app wrote {_human_bytes(over[container_id])} to its own files outside /data, "
            f"over the limit of {_human_bytes(limit)}: keep large files in /data (persistent "
            "storage) or write less"
        )
        _failed(settings, backend, space_pk, dep_id, container_id, reason, logs=True)
        stopped.append(space_pk)
    return stopped


def _human_bytes(n: int) -> str:
    return ByteSize(n).human_readable(decimal=True)


def restarts_due(settings: Settings) -> list[tuple[int, datetime | None]]:
    """(Space, owed-since) of Spaces whose start is due, oldest first: they should run and
    run nothing (crash retry, GPU queue, a starter died), or a start request is overdue."""
    now = utcnow()
    overdue = now - timedelta(seconds=OVERDUE_S)
    startable = (
        Stage.RUNTIME_ERROR.value,
        Stage.APP_STARTING.value,
        Stage.RUNNING_APP_STARTING.value,
        Stage.RUNNING.value,
    )
    with session_scope() as session:
        live = select(Deployment.space_id).where(
            Deployment.status.in_((DeploymentStatus.ACTIVE.value, DeploymentStatus.STARTING.value))
        )
        rows = session.execute(
            select(Space.id, Space.stage, Space.retry_at, Space.id.in_(live))
            .where(Space.desired == Desired.RUNNING.value, Space.stage.in_(startable))
            .order_by(Space.retry_at.is_(None), Space.retry_at, Space.id)
        ).all()
    due: list[tuple[int, datetime | None]] = []
    for space_pk, stage, retry_at, running in rows:
        if stage == Stage.RUNTIME_ERROR and retry_at is None and not running:
            continue  # `needs_owner`: retrying cannot help
        if running:
            if retry_at is not None and retry_at <= overdue:
                due.append((space_pk, retry_at))  # a restart nobody carried out
        elif retry_at is None or retry_at <= now:
            due.append((space_pk, retry_at))  # a start since then (if any) serves it
    return [(pk, since) for pk, since in due if not is_locked(settings, pk)]
