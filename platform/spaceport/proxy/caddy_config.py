"""The route table as Caddy JSON, and back: pure functions, no Caddy needed to test them.

Layout of the one server (`SERVER`), first match wins:
1. platform paths on each app's URL (`{app}/.spaceport/*`: sign-in handshake, embed script)
   go to the control plane;
2. path mode only: an entry route per Space moves the request onto the Space's internal host
   (so Caddy's per-host metrics count each Space apart although they share the apps host);
3. one route per Space to its container: forward auth first for private Spaces; the container's
   address is looked up by DNS (`resolver.py`), so moving an app changes no config;
4. everything else reaches the control plane (console, API, status pages of idle apps).
Errors on the way to an app (its container is gone: 502) are answered by the control plane's
status page too, never by a bare 502.

Every route carries `@id` = `space:{owner}:{name}` (plus `#platform`/`#entry` for the helpers),
so the table can be read back from Caddy itself.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

from spaceport.proxy.base import AUTHZ_PATH, PLATFORM_PATH, Headers, Route
from spaceport.proxy.caddy_process import admin_config, listen_address
from spaceport.proxy.resolver import (
    INTERNAL_DOMAIN,
    REFRESH_S,
    UNKNOWN_ADDRESS,
    Address,
    ipv4,
    resolver_address,
)
from spaceport.settings import Settings

SERVER = "spaceport"
ROUTE_ID_PREFIX = "space:"
API_ROUTE_ID = "spaceport:api"
PLATFORM_SUFFIX = "#platform"
ENTRY_SUFFIX = "#entry"
STREAM_CLOSE_DELAY = "720h"
"""How long a websocket/SSE stream outlives a reload that unloads its handler (every change).

Caddy closes streams of an unloaded config after this delay: 30 days means a routing change
for one Space never cuts another Space's open session (the old config stays in memory until
its last stream ends)."""

_PASS_HOST = "{http.request.hostport}"
_VAR_HOST = "{http.vars.public_host}"  # path mode: the public host, saved by the entry route
_HOST_HEADERS = ("Host", "X-Forwarded-Host")
_TOKEN_AUTH = ["Bearer sp_*"]


def route_id(space_id: str) -> str:
    """`owner/name` -> `space:owner:name`: usable in `/id/...` admin URLs, and reversible."""
    return ROUTE_ID_PREFIX + space_id.replace("/", ":")


def internal_host(space_id: str) -> str:
    """A path-mode Space's own host inside Caddy: its metrics label, never a public name."""
    return f"s{hashlib.sha256(space_id.encode()).hexdigest()[:20]}.{INTERNAL_DOMAIN}"


def _ports(settings: Settings) -> list[int]:
    """Ports a browser may put in the Host header: the public URL's and the listen port."""
    ports = [p for p in (settings.public_port,) if p and p not in (80, 443)]
    listen_port = settings.listen.rsplit(":", 1)[-1]
    if listen_port.isdigit() and int(listen_port) not in (80, 443, *ports):
        ports.append(int(listen_port))
    return ports


def metrics_hosts(settings: Settings, route: Route) -> list[str]:
    """The `host` labels Caddy's per-host metrics give this route's traffic.

    Caddy labels only hosts named in a host matcher, verbatim (with the port a browser sends):
    so subdomain routes list `host:port` too (inert for matching: the matcher compares names
    without ports); path-mode routes are counted under their internal host.
    """
    if route.path_prefix:
        return [internal_host(route.space_id)]
    return [*route.hosts, *(f"{h}:{p}" for h in route.hosts for p in _ports(settings))]


def _grouped(pairs: Headers) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, value in pairs:
        out.setdefault(name, []).append(value)
    return out


def _static(upstream: str) -> dict[str, Any]:
    return {"upstreams": [{"dial": upstream}]}


def _target(settings: Settings, route: Route) -> dict[str, Any]:
    """Where a Space's requests go: an IP upstream by its DNS name (the address then lives in
    the resolver's table, not in the config), anything else (a host name) as it is."""
    host, _, port = route.upstream.rpartition(":")
    if not ipv4(host):
        return _static(route.upstream)
    return {
        "dynamic_upstreams": {
            "source": "a",
            "name": internal_host(route.space_id) + ".",  # rooted: no search domains
            "port": port,
            "refresh": f"{round(REFRESH_S * 1000)}ms",
            "resolver": {"addresses": [f"udp/{resolver_address(settings)}"]},
            "versions": {"ipv4": True},
        }
    }


def address_table(routes: Iterable[Route], retired: Iterable[Route] = ()) -> dict[str, Address]:
    """The resolver's table for these routes (and leftovers kept `retired`, never live): each
    IP upstream's address by its DNS name."""
    table = {}
    for route, old in [*((r, False) for r in routes), *((r, True) for r in retired)]:
        host = route.upstream.rpartition(":")[0]
        if ipv4(host):
            table[internal_host(route.space_id)] = Address(host, route.live and not old, old)
    return table


def _reverse_proxy(
    target: dict[str, Any],
    request_headers: Headers = (),
    response_headers: Headers = (),
    *,
    public_host: str | None = None,
) -> dict[str, Any]:
    """Caddy passes the client's Host through and sets X-Forwarded-Host itself, so apps (Gradio
    checks it against the page's origin) see the public host; `public_host` puts it back where
    a path-mode entry route moved the request onto the Space's internal host.

    `flush_interval: -1`: every byte goes out at once, also of a body whose length is known
    (Caddy flushes only server-sent events and unknown lengths by itself).
    """
    request_set = {name: [public_host] for name in _HOST_HEADERS} if public_host else {}
    request_set.update(_grouped(request_headers))
    headers: dict[str, Any] = {}
    if request_set:
        headers["request"] = {"set": request_set}
    if response_headers:
        headers["response"] = {"set": _grouped(response_headers)}
    handler: dict[str, Any] = {
        "handler": "reverse_proxy",
        **target,
        "flush_interval": -1,
        "stream_close_delay": STREAM_CLOSE_DELAY,
    }
    if headers:
        handler["headers"] = headers
    return handler


def _forward_auth(settings: Settings, route: Route, public_host: str | None) -> dict[str, Any]:
    """Ask the control plane whether this request may reach a private Space (Caddy's
    `forward_auth`): a 2xx lets it through, any other answer is sent to the client as is."""
    request_set = {
        "X-Forwarded-Method": ["{http.request.method}"],
        "X-Forwarded-Uri": ["{http.request.uri}"],
        "X-Spaceport-Space": [route.space_id],
    }
    if public_host:
        request_set.update({name: [public_host] for name in _HOST_HEADERS})
    return {
        "handler": "reverse_proxy",
        "upstreams": [{"dial": settings.api_upstream}],
        "rewrite": {"method": "GET", "uri": AUTHZ_PATH},
        "headers": {"request": {"set": request_set}},
        # A 2xx runs these (no-op) routes, which write nothing: the chain goes on to the app.
        "handle_response": [
            {"match": {"status_code": [2]}, "routes": [{"handle": [{"handler": "vars"}]}]}
        ],
    }


# No app ever sees a visitor's Spaceport token (the owner's, opening a private Space, or
# anyone's that gradio_client sends along as x-hf-authorization).
_DROP_TOKEN = {
    "handler": "subroute",
    "routes": [
        {
            "match": [{"header": {header: _TOKEN_AUTH}}],
            "handle": [{"handler": "headers", "request": {"delete": [header]}}],
        }
        for header in ("Authorization", "X-Hf-Authorization")
    ],
}


def _app_handlers(
    settings: Settings, route: Route, public_host: str | None
) -> list[dict[str, Any]]:
    handlers: list[dict[str, Any]] = []
    if route.private:
        handlers.append(_forward_auth(settings, route, public_host))
    # Also on public apps: gradio_client sends its user's token to any Space it opens.
    handlers.append(_DROP_TOKEN)
    if route.strip_prefix and route.path_prefix:
        handlers.append({"handler": "rewrite", "strip_path_prefix": route.path_prefix})
    handlers.append(
        _reverse_proxy(
            _target(settings, route),
            route.request_headers,
            route.response_headers,
            public_host=public_host,
        )
    )
    return handlers


def _match(hosts: Iterable[str], paths: list[str] | None = None) -> dict[str, Any]:
    match: dict[str, Any] = {}
    hosts = list(hosts)
    if hosts:
        match["host"] = hosts
    if paths:
        match["path"] = paths
    return match


def render_route(settings: Settings, route: Route) -> dict[str, list[dict[str, Any]]]:
    """One Space's Caddy routes, by the layer they belong to (`platform`, `entry`, `app`)."""
    rid = route_id(route.space_id)
    api = _reverse_proxy(_static(settings.api_upstream))
    prefix = route.path_prefix or ""
    platform = {
        "@id": rid + PLATFORM_SUFFIX,
        "match": [_match(route.hosts, [f"{prefix}{PLATFORM_PATH}/*"])],
        "handle": [api],
        "terminal": True,
    }
    if not route.path_prefix:
        app = {
            "@id": rid,
            "match": [_match(metrics_hosts(settings, route))],
            "handle": _app_handlers(settings, route, None),
            "terminal": True,
        }
        return {"platform": [platform], "entry": [], "app": [app]}
    own_host = internal_host(route.space_id)
    entry = {
        "@id": rid + ENTRY_SUFFIX,
        "match": [_match(route.hosts, [prefix, prefix + "/*"])],
        "handle": [
            {"handler": "vars", "public_host": _PASS_HOST},
            {"handler": "headers", "request": {"set": {"Host": [own_host]}}},
        ],
    }
    app = {
        "@id": rid,
        "match": [_match([own_host])],
        "handle": _app_handlers(settings, route, _VAR_HOST),
        "terminal": True,
    }
    return {"platform": [platform], "entry": [entry], "app": [app]}


def _error_routes(settings: Settings) -> list[dict[str, Any]]:
    """An app that does not answer (container gone, restarting) gets the status page."""
    restore_host = {
        "match": [{"not": [{"vars": {_VAR_HOST: [""]}}]}],
        "handle": [{"handler": "headers", "request": {"set": {"Host": [_VAR_HOST]}}}],
    }
    status = _reverse_proxy(
        _static(settings.api_upstream),
        (("X-Spaceport-Proxy-Error", "{http.error.status_code}"),),
    )
    return [
        restore_host,
        {"handle": [{"handler": "rewrite", "uri": "{http.request.orig_uri}"}, status]},
    ]


def render_config(settings: Settings, routes: Iterable[Route]) -> dict[str, Any]:
    """The full Caddy config: platform paths, path-mode entries (longest prefix first), app
    routes, then the API catch-all; per-host metrics on, admin on its private socket."""
    ordered = sorted(routes, key=lambda r: (-len(r.path_prefix or ""), r.space_id))
    layers: dict[str, list[dict[str, Any]]] = {"platform": [], "entry": [], "app": []}
    for route in ordered:
        for layer, rendered in render_route(settings, route).items():
            layers[layer] += rendered
    catch_all = {"@id": API_ROUTE_ID, "handle": [_reverse_proxy(_static(settings.api_upstream))]}
    server = {
        "listen": [listen_address(settings)],
        "automatic_https": {"disable": True},
        "routes": [*layers["platform"], *layers["entry"], *layers["app"], catch_all],
        "errors": {"routes": _error_routes(settings)},
    }
    http = {"servers": {SERVER: server}, "metrics": {"per_host": True}}
    return {"admin": admin_config(settings), "apps": {"http": http}}


# --- reading the table back -------------------------------------------------------------------


def _pairs(header_map: dict[str, list[str]], skip_hosts: bool) -> Headers:
    return tuple(
        (name, value)
        for name, values in header_map.items()
        if not (skip_hosts and name in _HOST_HEADERS and values in ([_PASS_HOST], [_VAR_HOST]))
        for value in values
    )


def _space_id(rid: str) -> str:
    return rid.removeprefix(ROUTE_ID_PREFIX).replace(":", "/", 1)


def _upstream(proxy: dict[str, Any], table: Mapping[str, Address]) -> tuple[str, bool]:
    """(upstream, live) of an app's reverse_proxy handler; a dynamic one's from the table."""
    dynamic = proxy.get("dynamic_upstreams")
    if dynamic is None:
        return str(proxy["upstreams"][0]["dial"]), True
    address = table.get(str(dynamic["name"]).rstrip("."))
    if address is None:  # not in the table: nowhere to send it until the next sync
        return f"{UNKNOWN_ADDRESS}:{dynamic['port']}", False
    return f"{address.ip}:{dynamic['port']}", address.live


def parse_route(
    raw: dict[str, Any],
    entry: dict[str, Any] | None = None,
    table: Mapping[str, Address] | None = None,
) -> Route | None:
    """The `Route` an app route (and, in path mode, its entry route) came from, its address
    from the resolver's `table`; None for routes Spaceport did not render."""
    rid = raw.get("@id")
    if not isinstance(rid, str) or not rid.startswith(ROUTE_ID_PREFIX) or "#" in rid:
        return None
    try:
        handlers = raw["handle"]
        proxies = [h for h in handlers if h.get("handler") == "reverse_proxy"]
        app = proxies[-1]
        strip = [h for h in handlers if h.get("handler") == "rewrite" and "strip_path_prefix" in h]
        headers = app.get("headers", {})
        upstream, live = _upstream(app, table or {})
        if entry is not None:
            match = entry.get("match", [{}])[0]
            hosts = tuple(match.get("host", ()))
            prefix = (match.get("path") or [None])[0]
        else:
            match = raw.get("match", [{}])[0]
            hosts = tuple(h for h in match.get("host", ()) if ":" not in h)
            prefix = None
        return Route(
            space_id=_space_id(rid),
            hosts=hosts,
            upstream=upstream,
            path_prefix=prefix,
            request_headers=_pairs(headers.get("request", {}).get("set", {}), True),
            response_headers=_pairs(headers.get("response", {}).get("set", {}), False),
            strip_prefix=bool(strip),
            private=any("handle_response" in h for h in proxies[:-1]),
            live=live,
        )
    except (KeyError, IndexError, TypeError, ValueError, AttributeError):
        return None  # edited by hand beyond recognition: the next set_routes replaces it


def parse_routes(
    config: dict[str, Any] | None,
    table: Mapping[str, Address] | None = None,
    *,
    retired: bool = False,
) -> dict[str, Route]:
    """Spaceport's routes in a full Caddy config (as `GET /config/` returns it), with their
    addresses from the resolver's `table`; leftovers the table calls retired only if asked."""
    try:
        raw_routes = config["apps"]["http"]["servers"][SERVER]["routes"]  # type: ignore[index]
    except (KeyError, TypeError):
        return {}
    raw_routes = [r for r in raw_routes if isinstance(r, dict)]
    entries = {
        r["@id"].removesuffix(ENTRY_SUFFIX): r
        for r in raw_routes
        if isinstance(r.get("@id"), str) and r["@id"].endswith(ENTRY_SUFFIX)
    }
    routes = (parse_route(r, entries.get(r.get("@id", "")), table) for r in raw_routes)
    table = table or {}
    return {
        r.space_id: r
        for r in routes
        if r is not None
        and (retired or not getattr(table.get(internal_host(r.space_id)), "retired", False))
    }
