"""Control-plane request latency: `spaceport_http_request_duration_seconds{method,route,status}`.

Kept in the API process itself with prometheus-client's own Histogram, not in Redis like the
platform's events (spaceport/telemetry.py): it is counted on every request, and only the API
process serves requests (one uvicorn process per node; in cluster mode each node's API is
scraped on its own and Prometheus' `instance` label tells them apart). A restart starts the
counts from zero, which Prometheus' rate() and increase() expect of any counter.

Labels are bounded: `route` is the route's template (`/api/spaces/{owner}/{name}`), never the
raw path; requests no route matched (app hosts' status pages, 404s) share `route="other"`;
`status` is the status class (2xx..5xx); `method` is one of HTTP's few.
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REGISTRY = CollectorRegistry(auto_describe=True)
LATENCY = Histogram(
    "spaceport_http_request_duration_seconds",
    "Control-plane requests, from their arrival to the end of the response, by route template.",
    ("method", "route", "status"),
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
    registry=REGISTRY,
)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def route_of(scope: Scope) -> str:
    """The matched route's template, or `other`."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) and path else "other"


class RequestMetrics:
    """Pure ASGI middleware (streamed bodies pass through untouched) timing each HTTP request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # an exception before the response started

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            method = scope.get("method", "GET")
            LATENCY.labels(
                method if method in METHODS else "other", route_of(scope), f"{status // 100}xx"
            ).observe(time.perf_counter() - started)
