"""A Space's builds as their followers read them: the latest one, whether it is over, and the
tail of its log (the live Redis stream while it lasts, else the copy kept in the database)."""

from __future__ import annotations

import redis
from sqlalchemy.orm import Session

from spaceport.db import queries
from spaceport.db.models import Build, Space
from spaceport.db.session import session_scope
from spaceport.logstream import build_key, entries
from spaceport.settings import Settings
from spaceport.stages import BuildStatus


def latest_build(session: Session, space: Space) -> Build | None:
    return queries.latest_build(session, space.id)


def build_over(build_id: int) -> bool:
    """Whether the build has ended (or is gone), read in a session of its own."""
    with session_scope() as session:
        build = session.get(Build, build_id)
        return build is None or build.status not in (BuildStatus.QUEUED, BuildStatus.RUNNING)


def build_log_tail(settings: Settings, space_pk: int, count: int) -> list[str]:
    """The last `count` lines of the Space's latest build log, from the live stream (or the
    database)."""
    with session_scope() as session:
        build = queries.latest_build(session, space_pk)
        if build is None:
            return []
        build_id, stored = build.id, build.log or ""
    try:
        client = redis.Redis.from_url(settings.redis_url, socket_timeout=2)
        raw = client.xrevrange(build_key(build_id), count=count)
        lines = [f.get("data", "") for _, f in reversed(entries([(None, raw)]))]
        lines = [ln for ln in lines if ln]
    except redis.RedisError:
        lines = []
    return lines or stored.splitlines()[-count:]
