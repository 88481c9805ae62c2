"""`GET /api/v1/metrics`: Prometheus' text format, for each caller what they may see.

- Each Space's requests, errors and latency, read live from the proxy's own counters (one call
  to the proxy's admin socket per scrape): the control plane never sits in an app's request
  path to count it. Proxies on other machines report theirs through Redis (series with a
  `proxy` label). Also each Space's restarts and crashes in a row (services/monitoring.py).
  Anonymous scrapers see public Spaces; a token adds the Spaces it may read (an admin's: all).
- For admins, the platform's own: builds, build queue, deploys, sleeps and wakes, reconciler
  passes, node capacity and use, and control-plane request latency by route template
  (api/request_metrics.py).

Also the console graphs' history (services/history.py): a Space's for whoever may read it
(404 to others, as the Space itself), the node's for admins.
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal

import redis
import structlog
from fastapi import APIRouter, Depends, Query
from fastapi.responses import PlainTextResponse
from prometheus_client import CollectorRegistry, generate_latest
from sqlalchemy.orm import Session

from spaceport import telemetry
from spaceport.api import request_metrics
from spaceport.api.deps import Principal, optional_principal, readable_space, require_admin
from spaceport.db.models import Space
from spaceport.db.session import get_session
from spaceport.proxy import make_proxy
from spaceport.proxy.base import ProxyError, SpaceTraffic
from spaceport.proxy.traffic import followers_traffic, render_prometheus
from spaceport.services import history, spaces
from spaceport.services.monitoring import PlatformCollector
from spaceport.settings import Settings, get_settings

log = structlog.get_logger(__name__)
router = APIRouter(tags=["native"])
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@router.get("/api/v1/metrics", response_class=PlainTextResponse)
def space_metrics(
    who: Principal | None = Depends(optional_principal),
    session: Session = Depends(get_session),
) -> PlainTextResponse:
    """A plain `def`: FastAPI runs it in its thread pool. The scrape reads the database (also
    through sessions of its own, e.g. the GPU allocations), Redis and /proc; on the event loop
    a scrape waiting for a pooled connection would stop the loop from closing the sessions of
    finished requests, which give those connections back: a deadlock."""
    settings = get_settings()
    # Each Space the caller may read, with its failures in a row.
    readable = {s.space_id: s.crash_count or 0 for s in spaces.readable_spaces(session, who)}
    admin = who is not None and who.is_admin
    session.commit()  # the token's last use: not SQLite's write lock held for the whole scrape
    # Every Space the caller may see has its series from the start, at zero until its first
    # request (Prometheus' rate() and increase() then count that first request too). A proxy
    # that does not answer leaves its series out (not zeros), and the rest is still exported:
    # `spaceport_proxy_up 0` says why they are missing.
    try:
        traffic = asyncio.run(make_proxy(settings).traffic())
        text, proxy_up = "", 1
    except ProxyError as exc:
        log.warning("metrics.proxy_unavailable", error=str(exc))
        traffic, text, proxy_up = None, "", 0
    followers = {
        proxy_id: {s: t for s, t in counts.items() if s in readable}
        for proxy_id, counts in _followers(settings).items()
    }
    if traffic is not None or followers:
        shown = {space_id: (traffic or {}).get(space_id, SpaceTraffic()) for space_id in readable}
        text = render_prometheus(shown if traffic is not None else {}, followers)
    text += (
        "# HELP spaceport_proxy_up Whether the proxy answered for this scrape.\n"
        f"# TYPE spaceport_proxy_up gauge\nspaceport_proxy_up {proxy_up}\n"
    )
    registry = CollectorRegistry(auto_describe=False)
    registry.register(PlatformCollector(settings, session, admin=admin, spaces=readable))
    text += generate_latest(registry).decode()
    if admin and settings.metrics:
        text += generate_latest(request_metrics.REGISTRY).decode()
    return PlainTextResponse(text, media_type=CONTENT_TYPE)


Range = Literal["1h", "6h", "1d", "7d"]


def _followers(settings: Settings) -> dict[str, dict[str, SpaceTraffic]]:
    """The counters of the proxies on other machines (proxy/follower.py); none without Redis."""
    try:
        return followers_traffic(telemetry.redis_client(settings))
    except redis.RedisError as exc:
        log.warning("metrics.followers_unavailable", error=str(exc))
        return {}


@router.get("/api/v1/spaces/{owner}/{name}/metrics/history")
def space_history(
    range: Range = Query("1h"),  # the query parameter's name
    space: Space = Depends(readable_space),
    session: Session = Depends(get_session),
) -> dict[str, Any]:
    """The Space's graphs: requests, errors, latency, CPU, memory and stage per point (a
    minute by default; ten for a week), and its last builds' durations."""
    return history.space_history(get_settings(), session, space, history.RANGES[range])


@router.get("/api/v1/admin/history")
def node_history(
    range: Range = Query("1h"),
    _: Principal = Depends(require_admin),
) -> dict[str, Any]:
    """The node's CPU, memory and disk use per point, and the busiest Spaces of the range."""
    return history.node_history(get_settings(), history.RANGES[range])
