"""The Caddy backend: the route table rendered to one JSON config, pushed over the admin socket.

Caddy reloads its whole config on any change, so there is nothing to gain from patching paths:
every change renders the full config. The route table is read back from Caddy itself (each route
carries `@id` = `space:{owner}:{name}`), so Caddy stays the one record of what is served and a
restarted control plane picks up where it left off.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import httpx
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_fixed

from spaceport.proxy.base import Headers, Proxy, ProxyError, Route
from spaceport.proxy.caddy_process import CaddyProcess, admin_client, admin_config
from spaceport.settings import Settings

SERVER = "spaceport"
ROUTE_ID_PREFIX = "space:"
API_ROUTE_ID = "spaceport:api"
STREAM_CLOSE_DELAY = "10m"
"""How long a websocket/SSE stream outlives a reload that unloads its handler (every change)."""

_PASS_HOST = "{http.request.hostport}"
# Apps (Gradio) check the Host they see against the page's origin: give them the public one.
_FORWARD_HEADERS = {"Host": [_PASS_HOST], "X-Forwarded-Host": [_PASS_HOST]}
_UPDATE_TRIES = 10


def route_id(space_id: str) -> str:
    """`owner/name` -> `space:owner:name`: usable in `/id/...` admin URLs, and reversible."""
    return ROUTE_ID_PREFIX + space_id.replace("/", ":")


def _grouped(pairs: Headers) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, value in pairs:
        out.setdefault(name, []).append(value)
    return out


def _reverse_proxy(
    upstream: str, request_headers: Headers = (), response_headers: Headers = ()
) -> dict[str, Any]:
    request_set = {**_FORWARD_HEADERS, **_grouped(request_headers)}
    headers: dict[str, Any] = {"request": {"set": request_set}}
    if response_headers:
        headers["response"] = {"set": _grouped(response_headers)}
    return {
        "handler": "reverse_proxy",
        "upstreams": [{"dial": upstream}],
        "flush_interval": -1,  # stream every byte at once: SSE, chunked model output
        "stream_close_delay": STREAM_CLOSE_DELAY,
        "headers": headers,
    }


def render_route(route: Route) -> dict[str, Any]:
    match: dict[str, Any] = {}
    if route.hosts:
        match["host"] = list(route.hosts)
    if route.path_prefix:
        match["path"] = [route.path_prefix, route.path_prefix + "/*"]
    handler = _reverse_proxy(route.upstream, route.request_headers, route.response_headers)
    rid = route_id(route.space_id)
    return {"@id": rid, "match": [match], "handle": [handler], "terminal": True}


def render_config(settings: Settings, routes: Iterable[Route]) -> dict[str, Any]:
    """The full Caddy config: app routes (longest path prefix first), then the API catch-all."""
    ordered = sorted(routes, key=lambda r: (-len(r.path_prefix or ""), r.space_id))
    catch_all = {"@id": API_ROUTE_ID, "handle": [_reverse_proxy(settings.api_upstream)]}
    server = {
        "listen": [settings.listen],
        "automatic_https": {"disable": True},
        "routes": [*(render_route(r) for r in ordered), catch_all],
    }
    return {"admin": admin_config(settings), "apps": {"http": {"servers": {SERVER: server}}}}


def _pairs(header_map: dict[str, list[str]], skip: dict[str, list[str]]) -> Headers:
    return tuple(
        (name, value)
        for name, values in header_map.items()
        if skip.get(name) != values
        for value in values
    )


def parse_route(raw: dict[str, Any]) -> Route | None:
    """The `Route` a rendered route came from; None for routes Spaceport did not render."""
    rid = raw.get("@id")
    if not isinstance(rid, str) or not rid.startswith(ROUTE_ID_PREFIX):
        return None
    try:
        match = raw.get("match", [{}])[0]
        proxy = next(h for h in raw["handle"] if h.get("handler") == "reverse_proxy")
        headers = proxy.get("headers", {})
        paths = match.get("path") or [None]
        return Route(
            space_id=rid.removeprefix(ROUTE_ID_PREFIX).replace(":", "/", 1),
            hosts=tuple(match.get("host", ())),
            upstream=proxy["upstreams"][0]["dial"],
            path_prefix=paths[0],
            request_headers=_pairs(headers.get("request", {}).get("set", {}), _FORWARD_HEADERS),
            response_headers=_pairs(headers.get("response", {}).get("set", {}), {}),
        )
    except (KeyError, IndexError, StopIteration, TypeError, ValueError, AttributeError):
        return None  # edited by hand beyond recognition: the next set_routes replaces it


def parse_routes(config: dict[str, Any] | None) -> dict[str, Route]:
    """Spaceport's routes in a full Caddy config (as `GET /config/` returns it)."""
    try:
        raw_routes = config["apps"]["http"]["servers"][SERVER]["routes"]  # type: ignore[index]
    except (KeyError, TypeError):
        return {}
    routes = (parse_route(r) for r in raw_routes if isinstance(r, dict))
    return {r.space_id: r for r in routes if r is not None}


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
        resp = await self._request("POST", "/load", json=render_config(self.settings, routes))
        self._check(resp, "load the route table")

    async def _update(self, change: Callable[[dict[str, Route]], object]) -> None:
        """Read-modify-write of the table, guarded by Caddy's ETag against concurrent writers."""
        for _ in range(_UPDATE_TRIES):
            resp = await self._request("GET", "/config/")
            self._check(resp, "read its config")
            routes = parse_routes(resp.json())
            change(routes)
            etag = resp.headers.get("etag")
            resp = await self._request(
                "POST",
                "/config/",
                json=render_config(self.settings, routes.values()),
                headers={"If-Match": etag} if etag else None,
            )
            if resp.status_code != 412:  # 412: someone else changed it meanwhile; redo
                self._check(resp, "update the route table")
                return
        raise ProxyError(f"route table kept changing during {_UPDATE_TRIES} update attempts")

    async def add_route(self, route: Route) -> None:
        await self._update(lambda routes: routes.__setitem__(route.space_id, route))

    async def delete_route(self, space_id: str) -> None:
        await self._update(lambda routes: routes.pop(space_id, None))

    async def get_all_routes(self) -> dict[str, Route]:
        resp = await self._request("GET", "/config/")
        self._check(resp, "read its config")
        return parse_routes(resp.json())

    async def health(self) -> bool:
        try:
            async with admin_client(self.settings.caddy_admin_socket, timeout=2.0) as client:
                resp = await client.get(f"/config/apps/http/servers/{SERVER}/listen")
        except httpx.HTTPError:
            return False
        return resp.status_code == 200 and resp.json() == [self.settings.listen]

    async def stop(self) -> None:
        if self.process is not None:
            await self.process.stop()
