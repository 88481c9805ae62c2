"""The compressed tier: an idle app stays up, and the memory it does not touch is compressed.

The first of three tiers of an idle Space (then light and full sleep, lifecycle/sleeper.py):
after `compress_after_s` without a request, a RUNNING Space's container has its cold pages
pushed to the node's zram swap (`NodeOps.compress_memory`: about 90 of a Gradio app's 111 MiB,
stored in about a third of that). Its stage stays RUNNING and its route stays: a visitor's
request is served at once, faulting back the pages it touches. Spaces that never sleep are
compressed too: that is where an awake, idle node's memory goes.

Nothing about it is desired state: which containers were compressed, when, and how much, is
a note in Redis keyed by the container (a crashed and restarted app is a new container, so
it starts uncompressed, and is compressed again once idle). A Space is compressed once per
idle spell: a request after the compression starts a new spell.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime

import redis
import structlog
from sqlalchemy import select

from spaceport.db.models import Deployment, Space, utcnow
from spaceport.db.session import session_scope
from spaceport.engine import make_backend
from spaceport.engine.base import Compressed, RuntimeBackendError
from spaceport.lifecycle import jobs
from spaceport.lifecycle.desired import Desired
from spaceport.lifecycle.locks import space_lock
from spaceport.settings import Settings
from spaceport.stages import DeploymentStatus, Stage

log = structlog.get_logger(__name__)

NOTE_TTL_S = 7 * 24 * 3600  # a note outlives any idle spell worth keeping it for


@dataclass(frozen=True)
class Note:
    """A container's last compression."""

    at: str  # ISO time, UTC, naive (as the database keeps times)
    moved_bytes: int
    resident_bytes: int
    skipped: str = ""

    @property
    def when(self) -> datetime:
        return datetime.fromisoformat(self.at)


def _key(container_id: str) -> str:
    return f"spaceport:container:{container_id}:compressed"


def _client(settings: Settings) -> redis.Redis:
    return redis.Redis.from_url(settings.redis_url)


def note(settings: Settings, container_id: str | None) -> Note | None:
    """The container's last compression, if any (what the console shows)."""
    if not container_id:
        return None
    raw = _client(settings).get(_key(container_id))
    if raw is None:
        return None
    try:
        return Note(**json.loads(raw))
    except (TypeError, ValueError):
        return None


def check_compress(settings: Settings) -> int:
    """Compress (in the background, one at a time) the RUNNING Spaces idle long enough since
    their last compression; returns how many were queued."""
    if settings.compress_after_s <= 0:
        return 0
    now = utcnow()
    with session_scope() as session:
        rows = session.execute(
            select(Space.id, Space.last_request_at, Deployment.ready_at, Deployment.container_id)
            .join(Deployment, Deployment.space_id == Space.id)
            .where(
                Deployment.status == DeploymentStatus.ACTIVE,
                Space.desired == Desired.RUNNING.value,
                Space.stage == Stage.RUNNING.value,
            )
        ).all()
    queued = 0
    for space_pk, last_request, ready_at, container in rows:
        marks = [m for m in (last_request, ready_at) if m is not None]
        if not container or not marks:
            continue
        active = max(marks)
        if (now - active).total_seconds() < settings.compress_after_s:
            continue
        last = note(settings, container)
        if last is not None and last.when >= active:
            continue  # compressed in this idle spell already
        queued += jobs.submit_background_once(
            settings, f"compress:{space_pk}", compress, settings, space_pk, container
        )
    return queued


def compress(settings: Settings, space_pk: int, container: str) -> Note | None:
    """Compress the Space's container now, unless something else (a start, a sleep) has the
    Space or it no longer runs that container; None when it did not try."""
    with space_lock(settings, space_pk, wait_s=0) as lock:
        if lock is None:
            return None
        with session_scope() as session:
            still = session.scalar(
                select(Deployment.id)
                .join(Space, Space.id == Deployment.space_id)
                .where(
                    Deployment.space_id == space_pk,
                    Deployment.status == DeploymentStatus.ACTIVE,
                    Deployment.container_id == container,
                    Space.desired == Desired.RUNNING.value,
                    Space.stage == Stage.RUNNING.value,
                )
            )
        if still is None:
            return None
        at = utcnow().isoformat()
        try:
            done = make_backend(settings).node_ops().compress_memory(container)
        except RuntimeBackendError as exc:  # noted: not tried again until the next idle spell
            log.warning("compress.failed", space_pk=space_pk, error=str(exc))
            done = Compressed(0, skipped=f"failed: {exc}")
    result = Note(at, done.moved_bytes, done.resident_bytes, done.skipped)
    _client(settings).set(_key(container), json.dumps(asdict(result)), ex=NOTE_TTL_S)
    log.info(
        "compress.done",
        space_pk=space_pk,
        moved_mib=round(done.moved_bytes / 1024**2, 1),
        resident_mib=round(done.resident_bytes / 1024**2, 1),
        skipped=done.skipped or None,
    )
    return result
