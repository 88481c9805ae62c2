"""The Caddy backend: the route table rendered to one JSON config, pushed over the admin socket,
and the apps' addresses written to the resolver's table.

Caddy reloads its whole config on any change, so there is nothing to gain from patching paths:
every change renders the full config, and a change that only moves apps (deploy, restart,
sleep, wake) changes no config at all: only the address table (`resolver.py`). The route
table is read back from Caddy itself (each route carries `@id` = `space:{owner}:{name}`) and
that table, so a restarted control plane picks up where it left off.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import httpx
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_fixed

from spaceport.proxy.base import Proxy, ProxyError, Route, SpaceTraffic
from spaceport.proxy.caddy_config import (
    SERVER,
    address_table,
    metrics_hosts,
    parse_routes,
    render_config,
)
from spaceport.proxy.caddy_process import CaddyProcess, admin_client, listen_address
from spaceport.proxy.resolver import REFRESH_S, Address, read_table, write_table
from spaceport.proxy.traffic import per_space
from spaceport.settings import Settings

__all__ = ["CaddyProxy", "parse_routes", "render_config"]

_UPDATE_TRIES = 10


def _moved(before: dict[str, Address], after: dict[str, Address]) -> bool:
    """Whether a live app now lives elsewhere or nowhere: Caddy may still hold the old answer."""
    return any(
        old.live and (new := after.get(name)) is not None and new != old
        for name, old in before.items()
    )


class CaddyProxy(Proxy):
    """Routes through a Caddy configured only over its admin UNIX socket.

    With `manage_process` (the embedded default) `start`/`stop` also run the Caddy process;
    without it, Caddy is someone else's (compose) and only its config is ours.
    """

    def __init__(
        self, settings: Settings, *, manage_process: bool = True, admin_retry_s: float = 10.0
    ) -> None:
        self.settings = settings
        self.process = CaddyProcess(settings) if manage_process else None
        self.admin_retry_s = admin_retry_s

    async def _request(
        self, method: str, path: str, *, json: Any = None, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        """One admin call, retried while the socket is not answering yet (Caddy starting)."""
        socket = self.settings.caddy_admin_socket
        try:
            async for attempt in AsyncRetrying(
                retry=retry_if_exception_type(httpx.TransportError),
                stop=stop_after_delay(self.admin_retry_s),
                wait=wait_fixed(0.1),
                reraise=True,
            ):
                with attempt:
                    async with admin_client(socket) as client:
                        return await client.request(method, path, json=json, headers=headers)
        except httpx.TransportError as e:
            raise ProxyError(
                f"Caddy admin API not answering on {socket} ({e!r}); is Caddy running? "
                f"See {self.settings.logs_dir / 'caddy.log'}"
            ) from e
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _check(resp: httpx.Response, action: str) -> None:
        if resp.status_code >= 400:
            raise ProxyError(f"Caddy refused to {action}: HTTP {resp.status_code} {resp.text}")

    async def start(self) -> None:
        if self.process is not None:
            await self.process.start()
        # Re-render what Caddy serves: keeps apps routed, applies current settings (listen, API).
        await self.set_routes(list((await self.get_all_routes()).values()))

    async def set_routes(self, routes: Sequence[Route]) -> None:
        ids = [r.space_id for r in routes]
        if len(set(ids)) != len(ids):
            raise ValueError(f"set_routes: duplicate Space ids in {sorted(ids)}")
        config = render_config(self.settings, routes)
        current = await self._request("GET", "/config/")
        served = current.json() if current.status_code == 200 else None
        # Routes only dropped (a Space paused, stopped, deleted) stay in Caddy, not live, until
        # a reload is due anyway: their visitors reach the control plane's page all the same.
        wanted = set(ids)
        left = [
            replace(r, live=False)
            for r in parse_routes(served, read_table(self.settings), retired=True).values()
            if r.space_id not in wanted
        ]
        if left and served == render_config(self.settings, [*routes, *left]):
            config = served
        else:
            left = []
        before = self._write_addresses(routes, left)
        if served != config:
            # Every load is a full reload in Caddy: only a change of the routes costs one.
            resp = await self._request("POST", "/load", json=config)
            self._check(resp, "load the route table")
        await self._settle(before, routes)

    def _write_addresses(
        self, routes: Sequence[Route], retired: Sequence[Route] = ()
    ) -> dict[str, Address]:
        """Addresses first: a new route's name resolves as soon as Caddy has the route."""
        return write_table(self.settings, address_table(routes, retired))

    async def _settle(self, before: dict[str, Address], routes: Sequence[Route]) -> None:
        """Return only once Caddy sends no new request to an app's old address: callers say
        "running" right after, and a visitor must then reach the new version."""
        if _moved(before, address_table(routes)):
            await asyncio.sleep(REFRESH_S)

    async def _update(self, change: Callable[[dict[str, Route]], object]) -> None:
        """Read-modify-write of the table, guarded by Caddy's ETag against concurrent writers."""
        for _ in range(_UPDATE_TRIES):
            resp = await self._request("GET", "/config/")
            self._check(resp, "read its config")
            routes = parse_routes(resp.json(), read_table(self.settings))
            change(routes)
            etag = resp.headers.get("etag")
            before = self._write_addresses(list(routes.values()))
            resp = await self._request(
                "POST",
                "/config/",
                json=render_config(self.settings, routes.values()),
                headers={"If-Match": etag} if etag else None,
            )
            if resp.status_code != 412:  # 412: someone else changed it meanwhile; redo
                self._check(resp, "update the route table")
                await self._settle(before, list(routes.values()))
                return
        raise ProxyError(f"route table kept changing during {_UPDATE_TRIES} update attempts")

    async def add_route(self, route: Route) -> None:
        await self._update(lambda routes: routes.__setitem__(route.space_id, route))

    async def delete_route(self, space_id: str) -> None:
        await self._update(lambda routes: routes.pop(space_id, None))

    async def get_all_routes(self) -> dict[str, Route]:
        resp = await self._request("GET", "/config/")
        self._check(resp, "read its config")
        return parse_routes(resp.json(), read_table(self.settings))

    async def traffic(self) -> dict[str, SpaceTraffic]:
        routes = await self.get_all_routes()
        space_of_host = {
            host: r.space_id for r in routes.values() for host in metrics_hosts(self.settings, r)
        }
        resp = await self._request("GET", "/metrics")
        self._check(resp, "report its metrics")
        return per_space(resp.text, space_of_host, SERVER)

    async def health(self) -> bool:
        try:
            async with admin_client(self.settings.caddy_admin_socket, timeout=2.0) as client:
                resp = await client.get(f"/config/apps/http/servers/{SERVER}/listen")
        except httpx.HTTPError:
            return False
        return resp.status_code == 200 and resp.json() == [listen_address(self.settings)]

    async def stop(self) -> None:
        if self.process is not None:
            await self.process.stop()
