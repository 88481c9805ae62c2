"""The shared GPU pool as people see it: the pool's GPUs, the leases held now, the queue, and
each Space's GPU seconds (`GET /api/v1/gpus/shared`, the admin view, the metrics).

The broker publishes in Redis (zerogpu/state.py); this reads it back and hides the names of
private Spaces the caller may not see, as `GET /api/v1/gpus` does.
"""

from __future__ import annotations

import time
from typing import Any

import redis
from sqlalchemy.orm import Session

from spaceport import telemetry
from spaceport.auth.principal import Principal
from spaceport.engine.gpus.shared import pool
from spaceport.services import access, spaces
from spaceport.settings import Settings
from spaceport.zerogpu import state


def _shown(
    session: Session, who: Principal | None, space_id: str, everyone: bool = False
) -> str | None:
    if everyone or (who is not None and who.is_admin):
        return space_id
    owner, _, name = space_id.partition("/")
    space = spaces.find_space(session, owner, name)
    return space_id if space is not None and access.can_read(space, who) else None


def shared_view(
    session: Session, settings: Settings, who: Principal | None, *, admin: bool = False
) -> dict[str, Any]:
    """The pool as `who` may see it (`admin`: the admin view's, every Space named)."""
    client = telemetry.redis_client(settings)
    try:
        snap = state.snapshot(client)
    except redis.RedisError:
        snap = {"at": None, "leases": [], "queue": [], "usage": []}
    period = settings.zero_gpu_quota_period_s
    usage = []
    for row in snap["usage"]:
        name = _shown(session, who, row["space"], admin)
        if name is None:
            continue
        used = state.used(client, row["space"], period) if settings.zero_gpu_quota_s else None
        usage.append({**row, "space": name, "usedThisPeriodS": used})
    return {
        "pool": [{"index": g.index, "uuid": g.uuid, "name": g.name} for g in pool(settings)],
        "callsPerGpu": settings.zero_gpu_calls_per_gpu,
        "maxDurationS": settings.zero_gpu_max_duration_s,
        "quotaS": settings.zero_gpu_quota_s or None,
        "quotaPeriodS": period,
        "periodEnds": state.period_ends(period, time.time()),
        "leases": [{**c, "space": _shown(session, who, c["space"], admin)} for c in snap["leases"]],
        "queue": [{**c, "space": _shown(session, who, c["space"], admin)} for c in snap["queue"]],
        "usage": usage,
        "publishedAt": snap["at"],
    }
