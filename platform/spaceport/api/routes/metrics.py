"""`GET /api/v1/metrics`: each Space's requests, errors and latency, for Prometheus.

Read live from the proxy's own counters (one call to the proxy's admin socket per scrape); the
control plane never sits in an app's request path to count it. Anonymous scrapers see public
Spaces; a token adds the Spaces it may read (an admin's: all).
"""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import PlainTextResponse
from sqlalchemy.orm import Session

from spaceport.api.deps import Principal, optional_principal
from spaceport.db.session import get_session
from spaceport.proxy import make_proxy
from spaceport.proxy.base import SpaceTraffic
from spaceport.proxy.traffic import render_prometheus
from spaceport.services import spaces
from spaceport.settings import get_settings

router = APIRouter(tags=["native"])
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@router.get("/api/v1/metrics", response_class=PlainTextResponse)
async def space_metrics(
    who: Principal | None = Depends(optional_principal),
    session: Session = Depends(get_session),
) -> PlainTextResponse:
    traffic = await make_proxy(get_settings()).traffic()
    readable = {s.space_id for s in spaces.readable_spaces(session, who)}
    # Every Space the caller may see has its series from the start, at zero until its first
    # request (Prometheus' rate() and increase() then count that first request too).
    shown = {space_id: traffic.get(space_id, SpaceTraffic()) for space_id in readable}
    return PlainTextResponse(render_prometheus(shown), media_type=CONTENT_TYPE)
