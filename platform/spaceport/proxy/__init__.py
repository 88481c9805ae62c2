"""The reverse proxy in front of apps and the control plane.

Code outside this package uses `make_proxy(settings)`, `Proxy` and `Route` only; the backend is a
matter of configuration (`settings.proxy`, default "caddy"), as JupyterHub's proxy class is.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from spaceport.proxy.base import Headers, Proxy, ProxyError, Route, SpaceTraffic, headers

if TYPE_CHECKING:
    from spaceport.settings import Settings

__all__ = ["Headers", "Proxy", "ProxyError", "Route", "SpaceTraffic", "headers", "make_proxy"]


def make_proxy(settings: Settings) -> Proxy:
    """The configured proxy backend; imported lazily so unused backends cost nothing."""
    backend = getattr(settings, "proxy", "caddy")
    if backend == "caddy":
        from spaceport.proxy.caddy import CaddyProxy

        return CaddyProxy(settings)
    raise ProxyError(f"unknown proxy backend {backend!r} (SPACEPORT_PROXY); known: caddy")
