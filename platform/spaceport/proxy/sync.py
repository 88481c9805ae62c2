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
from spaceport.runtime.desired import Desired
from spaceport.settings import Settings
from spaceport.stages import DeploymentStatus

log = structlog.get_logger(__name__)


def route_for(settings: Settings, space: Space, upstream: str, live: bool = True) -> Route:
    """The route of one Space: where it lives (subdomain or path), who may pass (private
    Spaces: the owner only), and the headers its README asks for."""
    card = space.card_data or {}
    common = {
        "space_id": space.space_id,
        "hosts": (settings.app_host(space.owner, space.name),),
        "upstream": upstream,
        "response_headers": embedding.response_headers(card),
        "private": bool(space.private),
        "live": live,
    }
    if settings.routing != "path":
        return Route(**common)  # type: ignore[arg-type]
    prefix = settings.app_path(space.owner, space.name).rstrip("/")
    # Streamlit serves under its baseUrlPath; Gradio (root_path) and plain apps want it gone.
    return Route(**common, path_prefix=prefix, strip_prefix=space.sdk != "streamlit")  # type: ignore[arg-type]


def desired_routes(session: Session, settings: Settings) -> list[Route]:
    """A live route for each running Space's active deployment; a Space that is asleep, or
    whose app is down while it should run, keeps its route, not live, on its latest app's
    port (its visitors get the status page, and its wake changes no proxy config)."""
    rows = session.execute(
        select(Space, Deployment)
        .join(Deployment, Deployment.space_id == Space.id)
        .where(
            Deployment.upstream.is_not(None),
            Deployment.status != DeploymentStatus.STANDBY,
            Space.desired.in_((Desired.RUNNING, Desired.SLEEPING)),
        )
        .order_by(Deployment.id)
    ).all()
    routes: dict[str, Route] = {}
    for space, dep in rows:  # later deployments win, an active one over any other
        assert dep.upstream is not None
        live = dep.status == DeploymentStatus.ACTIVE and space.desired == Desired.RUNNING
        current = routes.get(space.space_id)
        if live or current is None or not current.live:
            routes[space.space_id] = route_for(settings, space, dep.upstream, live)
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
