"""Make the proxy's route table match the database.

Any process may call `sync_routes`: it computes the whole table from the database and loads it
under a Redis lock, so concurrent callers (API reconciler, workers) cannot interleave writes
and the last writer always wins with the current truth.
"""

from __future__ import annotations

import asyncio

import redis
import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session

from spaceport.db.models import Deployment, Space
from spaceport.db.session import session_scope
from spaceport.proxy import make_proxy
from spaceport.proxy.base import Route
from spaceport.settings import Settings
from spaceport.stages import DeploymentStatus

log = structlog.get_logger(__name__)


def desired_routes(session: Session, settings: Settings) -> list[Route]:
    rows = session.execute(
        select(Space, Deployment)
        .join(Deployment, Deployment.space_id == Space.id)
        .where(
            Deployment.status == DeploymentStatus.ACTIVE,
            Deployment.upstream.is_not(None),
            Space.desired == "running",
        )
        .order_by(Deployment.id)
    ).all()
    routes: dict[str, Route] = {}
    for space, dep in rows:  # later deployments win
        assert dep.upstream is not None
        routes[space.space_id] = Route(
            space_id=space.space_id,
            hosts=(settings.app_host(space.owner, space.name),),
            upstream=dep.upstream,
        )
    return list(routes.values())


def sync_routes(settings: Settings) -> int:
    """Load the desired routes into the proxy; returns how many routes are live."""
    client = redis.Redis.from_url(settings.redis_url)
    with client.lock("spaceport:proxy-sync", timeout=60, blocking_timeout=60):
        with session_scope() as session:
            routes = desired_routes(session, settings)
        asyncio.run(make_proxy(settings).set_routes(routes))
    log.info("proxy.synced", routes=len(routes))
    return len(routes)
