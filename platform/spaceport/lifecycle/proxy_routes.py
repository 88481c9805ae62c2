"""Make the proxy's route table match the database (and publish it for proxies on other
machines, proxy/route_table.py).

Any process may call `sync_routes`: it computes the whole table from the database and loads it
under a Redis lock, so concurrent callers (API reconciler, workers) cannot interleave writes
and the last writer always wins with the current truth.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Sequence

import redis
import structlog
from redis.exceptions import LockError
from sqlalchemy import select
from sqlalchemy.orm import Session

from spaceport.db.models import Deployment, Space, SpaceDomain
from spaceport.db.session import session_scope
from spaceport.lifecycle.desired import Desired
from spaceport.lifecycle.env import app_port
from spaceport.proxy import embedding, make_proxy, route_table
from spaceport.proxy.base import ProxyError, Route
from spaceport.proxy.resolver import UNKNOWN_ADDRESS
from spaceport.settings import Settings
from spaceport.stages import DeploymentStatus

log = structlog.get_logger(__name__)


def route_for(
    settings: Settings,
    space: Space,
    upstream: str,
    live: bool = True,
    domains: Sequence[str] = (),
) -> Route:
    """The route of one Space: where it lives (subdomain or path, and its verified custom
    `domains`), who may pass (private Spaces: the owner only), and the headers its README
    asks for."""
    card = space.card_data or {}
    common = {
        "space_id": space.space_id,
        "hosts": (settings.app_host(space.owner, space.name), *domains),
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
    """A route for every Space that should run or sleeps: live to its active deployment; not
    live (visitors get the status page) while it builds, starts, sleeps or is down, on the
    port of its latest app (or the port its README asks for, before its first). A Space's
    route so exists from its creation on: its first deploy, and every later move, changes
    only where the proxy sends it (nginx's table; for Caddy, the resolver's), never a
    reload."""
    spaces = session.scalars(
        select(Space).where(Space.desired.in_((Desired.RUNNING, Desired.SLEEPING)))
    ).all()
    rows = session.execute(
        select(Deployment.space_id, Deployment.status, Deployment.upstream)
        .where(
            Deployment.space_id.in_([s.id for s in spaces]),
            Deployment.upstream.is_not(None),
            Deployment.status != DeploymentStatus.STANDBY,
        )
        .order_by(Deployment.id)
    ).all()
    latest: dict[int, str] = {}
    active: dict[int, str] = {}
    for space_pk, status, upstream in rows:  # later deployments win
        assert upstream is not None  # selected so
        latest[space_pk] = upstream
        if status == DeploymentStatus.ACTIVE:
            active[space_pk] = upstream
    domains = verified_domains(session)
    routes = []
    for space in spaces:
        extra = domains.get(space.id, [])
        if space.desired == Desired.RUNNING and space.id in active:
            routes.append(route_for(settings, space, active[space.id], domains=extra))
        else:
            upstream = latest.get(space.id) or f"{UNKNOWN_ADDRESS}:{app_port(space)}"
            routes.append(route_for(settings, space, upstream, live=False, domains=extra))
    return routes


def verified_domains(session: Session) -> dict[int, list[str]]:
    """Space id -> its custom domains that are verified (services/domains.py): only those
    route; one query for the whole table."""
    out: dict[int, list[str]] = {}
    rows = session.execute(
        select(SpaceDomain.space_id, SpaceDomain.domain)
        .where(SpaceDomain.verified_at.is_not(None))
        .order_by(SpaceDomain.id)
    )
    for space_id, domain in rows:
        out.setdefault(space_id, []).append(domain)
    return out


STALE_KEY = "spaceport:routes:stale"
# Delete the stale mark only if it is the one a push saw before it read the database.
CLEAR_IF_SAME = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"
)


def sync_routes(settings: Settings) -> int:
    """Load the desired routes into the proxy; returns how many routes are live. One that
    fails leaves the table marked stale: the reconciler's next pass loads it again."""
    client = redis.Redis.from_url(settings.redis_url)
    try:
        with client.lock("spaceport:proxy-sync", timeout=60, blocking_timeout=60):
            stale = client.get(STALE_KEY)  # (read before the database: a later mark stays)
            with session_scope() as session:
                routes = desired_routes(session, settings)
            started = time.perf_counter()
            route_table.publish(client, routes)  # proxies on other machines (--follow)
            asyncio.run(make_proxy(settings).set_routes(routes))  # a no-op when nothing changed
    except Exception:
        mark_routes_stale(settings)
        raise
    if stale is not None:
        client.eval(CLEAR_IF_SAME, 1, STALE_KEY, stale)
    ms = round((time.perf_counter() - started) * 1000, 1)
    log.info("proxy.synced", routes=len(routes), ms=ms)
    return len(routes)


def mark_routes_stale(settings: Settings) -> None:
    """The proxy's table may differ from the database's (a push failed, the proxy restarted):
    the reconciler compares them at its next pass, not only at its periodic check."""
    with contextlib.suppress(redis.RedisError):
        redis.Redis.from_url(settings.redis_url).set(STALE_KEY, uuid.uuid4().hex)


def routes_stale(settings: Settings) -> bool:
    return bool(redis.Redis.from_url(settings.redis_url).exists(STALE_KEY))


def try_sync_routes(settings: Settings) -> None:
    """`sync_routes`, for callers whose own work is done whether or not the proxy answers now
    (a new Space): a failure is logged, and the reconciler's next pass loads the routes."""
    try:
        if not asyncio.run(make_proxy(settings).health()):
            raise ProxyError("the proxy does not answer")  # not worth waiting for here
        sync_routes(settings)
    except (ProxyError, redis.RedisError, LockError) as exc:
        mark_routes_stale(settings)
        log.warning("proxy.sync_deferred", error=str(exc))
