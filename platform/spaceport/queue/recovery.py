"""Builds whose worker died mid-build (killed, out of memory, machine lost) never stay BUILDING,
and queued builds whose task Redis lost (restarted without persistence, or down during the
push) never stay queued: `resend_lost_queued` sends them again.

Two paths bring running builds back. Celery's late acks give a killed worker's task back to
the queue; the redelivered task waits for the Space's build lease to expire and builds again
(claim() counts the attempt). And the reconciler calls `recover_stuck_builds` every pass: a
build that is `running` in the database without a heartbeat (lease.py) has lost its
worker, so it is queued again, or, after MAX_ATTEMPTS, marked failed with a reason the owner
can act on.
"""

from __future__ import annotations

from datetime import timedelta

import redis
import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session

from spaceport import queue
from spaceport.db.models import Build, utcnow
from spaceport.db.queries import active_deployment
from spaceport.db.session import session_scope
from spaceport.logstream import LogWriter, build_key
from spaceport.queue.lease import LEASE_TTL_S, heartbeat_key
from spaceport.settings import Settings
from spaceport.stages import BuildStatus, Stage

log = structlog.get_logger(__name__)

MAX_ATTEMPTS = 2
ATTEMPTS_TTL_S = 7 * 24 * 3600
# A build claimed less than this long ago may not have written its first heartbeat yet.
GRACE_S = LEASE_TTL_S
# A build row is committed just before its task is sent: younger ones may not be sent yet.
QUEUED_GRACE_S = 5
LOST_MESSAGE = (
    "The build worker stopped during the build {attempts} times (killed, out of memory, or its "
    "machine went away), so the build was given up. Push again or rebuild; if it keeps "
    "happening, the build may need more memory than the builder allows (SPACEPORT_BUILD_MEMORY)."
)


def attempts_key(build_id: int) -> str:
    return f"spaceport:build:{build_id}:attempts"


def note_attempt(client: redis.Redis, build_id: int) -> int:
    """Count one more start of this build; returns the count so far."""
    key = attempts_key(build_id)
    count = int(client.incr(key))
    client.expire(key, ATTEMPTS_TTL_S)
    return count


def recover_stuck_builds(settings: Settings) -> int:
    """Requeue (or fail) running builds that lost their worker; returns how many were handled."""
    client = redis.Redis.from_url(settings.redis_url)
    handled = 0
    cutoff = utcnow() - timedelta(seconds=GRACE_S)
    with session_scope() as session:
        stuck = session.scalars(
            select(Build).where(Build.status == BuildStatus.RUNNING, Build.started_at < cutoff)
        ).all()
        for build in stuck:
            if client.exists(heartbeat_key(build.id)):
                continue
            space = build.space
            attempts = int(client.get(attempts_key(build.id)) or 0)
            handled += 1
            if attempts >= MAX_ATTEMPTS:
                fail_lost_build(session, build, attempts)
                log.warning("build.lost_given_up", build=build.id, space=space.space_id)
                continue
            build.status = BuildStatus.QUEUED.value
            writer = LogWriter(client, build_key(build.id), settings.build_log_max_bytes)
            writer.write("The build worker stopped during the build; building again.")
            session.flush()
            session.commit()  # the worker must see the row before it picks the task up
            build.task_id = queue.send_build(build.id)
            log.warning("build.lost_requeued", build=build.id, space=space.space_id)
    return handled


def resend_lost_queued(settings: Settings) -> int:
    """Send again the queued builds whose task Redis lost (see `queue.sent_key`)."""
    client = redis.Redis.from_url(settings.redis_url, socket_timeout=5)
    cutoff = utcnow() - timedelta(seconds=QUEUED_GRACE_S)
    resent = 0
    with session_scope() as session:
        queued = session.scalars(
            select(Build).where(Build.status == BuildStatus.QUEUED, Build.created_at < cutoff)
        ).all()
        for build in queued:
            if client.exists(queue.sent_key(build.id)):
                continue
            build.task_id = queue.send_build(build.id)
            resent += 1
            log.warning("build.queue_lost_resent", build=build.id, space=build.space.space_id)
    return resent


def fail_lost_build(session: Session, build: Build, attempts: int) -> None:
    """Mark a build failed for good; a Space with a serving version stays RUNNING."""
    message = LOST_MESSAGE.format(attempts=attempts)
    build.status, build.finished_at = BuildStatus.FAILED.value, utcnow()
    build.error_message = message
    space = build.space
    serving = active_deployment(session, space.id) is not None
    space.stage = (Stage.RUNNING if serving else Stage.BUILD_ERROR).value
    space.error_message = message
