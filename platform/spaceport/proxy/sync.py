"""Make the proxy's route table match the database.

Any process may call `sync_routes`: it computes the whole table from the database and loads it
under a Redis lock, so concurrent callers (API reconciler, workers) cannot interleave writes
and the last writer always wins with the current truth.
"""

from __future__ import annotations

import asyncio
import time

import redis
import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session

from spaceport.db.models import Deployment, Space
from spaceport.db.session import session_scope
from spaceport.proxy import embedding, make_proxy
from spaceport.proxy.base import Route
from spaceport.settings import Settings
from spaceport.stages import DeploymentStatus

log = structlog.get_logger(__name__)


def route_for(settings: Settings, space: Space, upstream: str) -> Route:
    """The route of one running Space: where it lives (subdomain or path), who may pass
    (private Spaces: the owner only), and the headers its README asks for."""
    card = space.card_data or {}
    common = {
        "space_id": space.space_id,
        "hosts": (settings.app_host(space.owner, space.name),),
        "upstream": upstream,
        "response_headers": embedding.response_headers(card),
        "private": bool(space.private),
    }
    if settings.routing != "path":
        return Route(**common)  # type: ignore[arg-type]
    prefix = settings.app_path(space.owner, space.name).rstrip("/")
    # Streamlit serves under its baseUrlPath; Gradio (root_path) and plain apps want it gone.
    return Route(**common, path_prefix=prefix, strip_prefix=space.sdk != "streamlit")  # type: ignore[arg-type]


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
        routes[space.space_id] = route_for(settings, space, dep.upstream)
    return list(routes.values())


def sync_routes(settings: Settings) -> int:
    """Load the desired routes into the proxy; returns how many routes are live."""
    client = redis.Redis.from_url(settings.redis_url)
    with client.lock("spaceport:proxy-sync", timeout=60, blocking_timeout=60):
        with session_scope() as session:
            routes = desired_routes(session, settings)
        started = time.perf_counter()
        asyncio.run(make_proxy(settings).set_routes(routes))  # a no-op when nothing changed
    ms = round((time.perf_counter() - started) * 1000, 1)
    log.info("proxy.synced", routes=len(routes), ms=ms)
    return len(routes)
