"""The proxy contract: what the control plane asks of whatever routes traffic to apps.

Shaped like JupyterHub's `Proxy`: a route table keyed by Space id and a handful of async
methods. The reconciler computes the desired table from the database and calls `set_routes`;
the rest of the code only sees `Proxy` and `Route`, never an implementation (see `make_proxy`).
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

Headers = tuple[tuple[str, str], ...]
"""Header (name, value) pairs: a tuple so that `Route` stays hashable and frozen."""

PLATFORM_PATH = "/.spaceport"
"""Paths under every app's URL that the platform answers (see api/routes/app_status.py)."""
AUTHZ_PATH = PLATFORM_PATH + "/authz"
"""Where the proxy asks whether a request may reach a private Space: 2xx lets it through."""

_ID_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")


@dataclass
class SpaceTraffic:
    """What the proxy saw of one Space: counters since the proxy started (they reset with it).

    `errors` are responses with a 5xx status; `duration_buckets` maps a bucket's upper bound
    in seconds (Prometheus `le`, "+Inf" last) to the cumulative count of requests that took
    at most that long.
    """

    requests: float = 0.0
    errors: float = 0.0
    in_flight: float = 0.0
    duration_sum: float = 0.0
    duration_count: float = 0.0
    duration_buckets: dict[str, float] = field(default_factory=dict)


class ProxyProcess(Protocol):
    """The proxy's own process, where Spaceport runs it (the embedded setup)."""

    name: str
    pidfile: Path

    def is_running(self) -> bool: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class ProxyError(Exception):
    """The proxy could not be started, reached or reconfigured; the message says why."""


def headers(items: Mapping[str, str] | Iterable[tuple[str, str]] | None) -> Headers:
    """Normalise headers to sorted (name, value) pairs: one spelling per route table."""
    pairs = items.items() if isinstance(items, Mapping) else (items or ())
    return tuple(sorted((str(k), str(v)) for k, v in pairs))


@dataclass(frozen=True)
class Route:
    """Send requests for `hosts` (and, when set, under `path_prefix`) to `upstream`.

    `upstream` is a dial address (`127.0.0.1:32768`). `path_prefix` is passed to the app
    unchanged (apps in path mode are told their base path, as Streamlit's `baseUrlPath` wants)
    unless `strip_prefix` (Gradio's `root_path`, plain Docker apps). `response_headers` are set
    on every response (e.g. `X-Frame-Options`), overriding the app's; `request_headers` are set
    on every request sent to the app; build them with `headers({...})`. A `private` route lets
    a request through only when the control plane says its sender may see the Space (the
    owner's token or app cookie); everyone else gets the control plane's 404. A route that is
    not `live` (its app asleep or down) keeps its place but sends visitors to the control
    plane's status page; making it live again, or moving it to another upstream on the same
    port, changes no proxy configuration (see proxy/resolver.py).
    """

    space_id: str
    hosts: tuple[str, ...]
    upstream: str
    path_prefix: str | None = None
    response_headers: Headers = field(default=())
    request_headers: Headers = field(default=())
    strip_prefix: bool = False
    private: bool = False
    live: bool = True

    def __post_init__(self) -> None:
        parts = self.space_id.split("/")
        if len(parts) != 2 or not all(_ID_PART.match(p) for p in parts):
            raise ValueError(f"Route: space id must be 'owner/name' (got {self.space_id!r})")
        hosts = tuple(h.lower() for h in self.hosts)
        if not self.upstream or ":" not in self.upstream:
            raise ValueError(f"Route {self.space_id}: upstream must be host:port")
        prefix = self.path_prefix.rstrip("/") if self.path_prefix else None
        if self.path_prefix is not None and not self.path_prefix.startswith("/"):
            raise ValueError(f"Route {self.space_id}: path_prefix must start with '/'")
        if not hosts and not prefix:
            raise ValueError(f"Route {self.space_id}: needs hosts or a path_prefix")
        if self.strip_prefix and not prefix:
            raise ValueError(f"Route {self.space_id}: strip_prefix needs a path_prefix")
        object.__setattr__(self, "hosts", hosts)
        object.__setattr__(self, "path_prefix", prefix)
        object.__setattr__(self, "response_headers", headers(self.response_headers))
        object.__setattr__(self, "request_headers", headers(self.request_headers))


class Proxy(ABC):
    """A reverse proxy whose route table the control plane owns.

    Routes are keyed by Space id: one route per Space. Every method is safe to call again
    (idempotent), so the reconciler can simply re-apply the desired state after any failure.
    """

    @abstractmethod
    async def start(self) -> None:
        """Make the proxy serve traffic (start it if this backend manages it).

        Routes already present survive: a restarted control plane does not cut running apps.
        """

    @abstractmethod
    async def set_routes(self, routes: Sequence[Route]) -> None:
        """Replace the whole route table at once; Space ids must be unique."""

    @abstractmethod
    async def add_route(self, route: Route) -> None:
        """Add the route, or replace the one with the same Space id."""

    @abstractmethod
    async def delete_route(self, space_id: str) -> None:
        """Remove the Space's route; its host then reaches the control plane. No-op if absent."""

    @abstractmethod
    async def get_all_routes(self) -> dict[str, Route]:
        """The routes the proxy is serving now, read back from it, keyed by Space id."""

    @abstractmethod
    async def traffic(self) -> dict[str, SpaceTraffic]:
        """Counters of the traffic each routed Space got since the proxy started, by Space id:
        what the sleep timer and the metrics endpoint read."""

    @abstractmethod
    async def health(self) -> bool:
        """Whether the proxy answers and carries Spaceport's configuration; never raises."""

    @abstractmethod
    async def stop(self) -> None:
        """Stop the proxy if this backend manages it; all app traffic stops with it."""
