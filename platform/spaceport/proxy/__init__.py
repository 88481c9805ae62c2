"""The reverse proxy in front of apps and the control plane.

Code outside this package uses `make_proxy(settings)`, `Proxy` and `Route` only; the backend is a
matter of configuration (`settings.proxy`: "caddy" or "nginx"), as JupyterHub's proxy class is.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from spaceport.proxy.base import (
    Headers,
    Proxy,
    ProxyError,
    ProxyProcess,
    Route,
    SpaceTraffic,
    headers,
)

if TYPE_CHECKING:
    from spaceport.settings import Settings

__all__ = [
    "Headers",
    "Proxy",
    "ProxyError",
    "ProxyProcess",
    "Route",
    "SpaceTraffic",
    "headers",
    "make_proxy",
    "proxy_process",
]


def make_proxy(settings: Settings) -> Proxy:
    """The configured proxy backend; imported lazily so unused backends cost nothing."""
    backend = getattr(settings, "proxy", "nginx")
    if backend == "caddy":
        from spaceport.proxy.caddy import CaddyProxy

        return CaddyProxy(settings)
    if backend == "nginx":
        from spaceport.proxy.nginx import NginxProxy

        return NginxProxy(settings)
    raise ProxyError(f"unknown proxy backend {backend!r} (SPACEPORT_PROXY); known: caddy, nginx")


def proxy_process(settings: Settings) -> ProxyProcess:
    """The process of the configured backend that `spaceport up`/`proxy`/`down` manage."""
    backend = getattr(settings, "proxy", "nginx")
    if backend == "nginx":
        from spaceport.proxy.nginx import NginxProcess

        return NginxProcess(settings)
    from spaceport.proxy.caddy_process import CaddyProcess

    return CaddyProcess(settings)
