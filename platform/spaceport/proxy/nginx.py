"""The nginx backend: a data plane as fast as nginx itself, driven like Caddy's admin API.

Caddy spends 4-5x nginx's CPU per proxied request on this class of machine (docs/benchmarks.md,
"Proxy"), which kept a tiny upstream behind Spaceport at a fifth of nginx's throughput. Here
nginx (with Debian's Lua module) carries the traffic: its config is fixed per node
(`nginx_conf.py`), and the route table lives in nginx's shared memory (`nginx_data/spaceport.lua`),
replaced whole by one PUT on a private UNIX socket. No routing change of any kind reloads nginx
or closes a connection, so the resolver Caddy needs is not used here.

The table is also written to `{run_dir}/nginx-routes.json`, which nginx loads when it starts:
a restarted nginx serves every app where it was before the control plane says anything.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterable, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

import httpx
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_fixed

from spaceport.proxy.base import Proxy, ProxyError, Route, SpaceTraffic
from spaceport.proxy.caddy_process import admin_client, alive
from spaceport.proxy.nginx_conf import ROUTES_FILE, render
from spaceport.proxy.tls_store import placeholder
from spaceport.settings import Settings

__all__ = ["NginxProcess", "NginxProxy", "find_nginx", "lua_modules"]

_MAX_SOCKET_PATH = 107


def find_nginx(settings: Settings) -> str:
    """settings.nginx_bin, else `nginx` on PATH or in /usr/sbin (not on a user's PATH)."""
    found = shutil.which(settings.nginx_bin or "nginx") or (
        None if settings.nginx_bin else shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    )
    if found is None:
        raise ProxyError(
            f"no nginx binary ({settings.nginx_bin or 'nginx'} not found); "
            "install nginx and libnginx-mod-http-lua (make system), or set SPACEPORT_NGINX_BIN"
        )
    return found


def lua_modules(settings: Settings, binary: str) -> Path | None:
    """Where the Lua modules are to be loaded from; None when `binary` has Lua built in."""
    version = subprocess.run([binary, "-V"], capture_output=True, text=True).stderr
    if "lua-nginx-module" in version or "openresty" in version.lower():
        return None
    modules = Path(settings.nginx_modules_dir)
    if not (modules / "ngx_http_lua_module.so").is_file():
        raise ProxyError(
            f"nginx has no Lua module ({modules}/ngx_http_lua_module.so is missing): "
            "install libnginx-mod-http-lua (make system), or set SPACEPORT_NGINX_MODULES_DIR"
        )
    return modules


def route_json(route: Route) -> dict[str, Any]:
    """The route's fields, shallow (json.dumps writes the tuples as lists): `asdict`'s deep
    copy took half of a 1,000-route table update."""
    return {f.name: getattr(route, f.name) for f in fields(route)}


def table_json(routes: Iterable[Route]) -> str:
    """A route table as nginx loads it (`{"routes": [...]}`), the same text for the same routes
    in any order: what `set_routes` compares with the served one and route_table publishes."""
    ordered = sorted(routes, key=lambda r: r.space_id)
    return json.dumps({"routes": [route_json(r) for r in ordered]}, sort_keys=True)


def route_from_json(raw: dict[str, Any]) -> Route:
    return Route(
        space_id=raw["space_id"],
        hosts=tuple(raw["hosts"]),
        upstream=raw["upstream"],
        path_prefix=raw.get("path_prefix"),
        response_headers=tuple(tuple(p) for p in raw.get("response_headers", ())),
        request_headers=tuple(tuple(p) for p in raw.get("request_headers", ())),
        strip_prefix=bool(raw.get("strip_prefix")),
        private=bool(raw.get("private")),
        live=bool(raw.get("live", True)),
    )


class NginxProcess:
    """One nginx per data dir: start (idempotent), stop, is_running."""

    name = "nginx"

    def __init__(self, settings: Settings, start_timeout_s: float = 20.0) -> None:
        self.settings = settings
        self.start_timeout_s = start_timeout_s
        self.socket = settings.nginx_admin_socket
        self.pidfile = settings.run_dir / "nginx.pid"
        self.conf = settings.run_dir / "nginx.conf"
        self.log_file = settings.logs_dir / "nginx.log"

    def pid(self) -> int | None:
        try:
            pid = int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if alive(pid, "nginx") else None

    def is_running(self) -> bool:
        return self.pid() is not None

    def render(self, daemon: bool = True) -> str:
        binary = find_nginx(self.settings)
        return render(
            self.settings,
            modules_dir=lua_modules(self.settings, binary),
            user="nobody nogroup" if os.geteuid() == 0 else None,
            daemon=daemon,
            pidfile=None if daemon else self.settings.run_dir / "nginx-foreground.pid",
            placeholder=placeholder(self.settings) if self.settings.https else None,
        )

    def _prepare(self, daemon: bool) -> str:
        """Write the config and clear what a killed nginx left; returns the binary."""
        if len(str(self.socket)) > _MAX_SOCKET_PATH:
            raise ProxyError(
                f"nginx admin socket path is too long for a UNIX socket ({self.socket}); "
                "use a shorter SPACEPORT_DATA"
            )
        binary = find_nginx(self.settings)
        for d in (self.settings.run_dir / "nginx-temp", self.settings.logs_dir):
            d.mkdir(parents=True, exist_ok=True)
        self.conf.write_text(self.render(daemon))
        self.socket.unlink(missing_ok=True)
        return binary

    def _argv(self, binary: str) -> list[str]:
        """nginx on our config; `-e`: its own log from the first line (not /var/log/nginx,
        which a non-root node cannot write)."""
        return [
            binary,
            "-p",
            str(self.settings.run_dir),
            "-c",
            str(self.conf),
            "-e",
            str(self.log_file),
        ]

    def exec_foreground(self) -> None:
        """Become nginx, master in the foreground (a container's main process): it serves the
        routes saved in the run dir at once, and the reconciler keeps them current."""
        binary = self._prepare(daemon=False)
        os.execv(binary, self._argv(binary))

    async def start(self) -> None:
        """Start nginx unless it already runs, and return once its admin socket answers. A
        running nginx whose config is not what these settings render (an upgrade, a changed
        API port) reloads it: its workers are replaced gracefully, open requests finish."""
        if self.pid() is not None and await health(self.socket) is not None:
            wanted = self.render()
            if not self.conf.is_file() or self.conf.read_text() != wanted:
                self.conf.write_text(wanted)
                binary = find_nginx(self.settings)
                done = subprocess.run(
                    [*self._argv(binary), "-s", "reload"], capture_output=True, text=True
                )
                if done.returncode != 0:
                    raise ProxyError(f"nginx did not reload: {done.stderr.strip()}")
            return
        binary = self._prepare(daemon=True)
        done = subprocess.run(
            self._argv(binary),
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # the master daemonizes; detached from our terminal
        )
        if done.returncode != 0:
            raise ProxyError(
                f"nginx did not start (exit {done.returncode}): {done.stderr.strip()}; "
                f"see {self.log_file}"
            )
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if await health(self.socket) is not None:
                self.socket.chmod(0o600)  # nginx makes it by the umask; only we may drive it
                return
            await asyncio.sleep(0.05)
        raise ProxyError(f"nginx did not answer on {self.socket}; see {self.log_file}")

    async def stop(self, grace_s: float = 5.0) -> None:
        """Stop nginx at once (SIGTERM: open websockets would keep a graceful stop waiting)."""
        pid = self.pid()
        if pid is None:
            self.pidfile.unlink(missing_ok=True)
            return
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + grace_s
            while alive(pid, "nginx") and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            if not alive(pid, "nginx"):
                break
        self.pidfile.unlink(missing_ok=True)


async def health(socket: Path, timeout: float = 1.0) -> dict[str, Any] | None:
    """nginx's own view (`listen`, table `version`), or None when it does not answer."""
    if not socket.exists():
        return None
    try:
        async with admin_client(socket, timeout) as client:
            resp = await client.get("/health")
    except httpx.HTTPError:
        return None
    if resp.status_code != 200:
        return None
    body = resp.json()
    return body if isinstance(body, dict) else None


class NginxProxy(Proxy):
    """Routes through an nginx whose route table is pushed over its admin UNIX socket."""

    def __init__(
        self, settings: Settings, *, manage_process: bool = True, admin_retry_s: float = 10.0
    ) -> None:
        self.settings = settings
        self.process = NginxProcess(settings) if manage_process else None
        self.admin_retry_s = admin_retry_s
        self.routes_file = settings.run_dir / ROUTES_FILE

    async def _request(
        self, method: str, path: str, content: bytes | None = None
    ) -> httpx.Response:
        socket = self.settings.nginx_admin_socket
        try:
            async for attempt in AsyncRetrying(
                retry=retry_if_exception_type(httpx.TransportError),
                stop=stop_after_delay(self.admin_retry_s),
                wait=wait_fixed(0.1),
                reraise=True,
            ):
                with attempt:
                    async with admin_client(socket) as client:
                        resp = await client.request(method, path, content=content)
        except httpx.TransportError as e:
            raise ProxyError(
                f"nginx admin socket not answering on {socket} ({e!r}); is nginx running? "
                f"See {self.settings.logs_dir / 'nginx.log'}"
            ) from e
        if resp.status_code >= 400:
            raise ProxyError(f"nginx refused {method} {path}: HTTP {resp.status_code} {resp.text}")
        return resp

    async def start(self) -> None:
        if self.process is not None:
            await self.process.start()

    async def set_routes(self, routes: Sequence[Route]) -> None:
        ids = [r.space_id for r in routes]
        if len(set(ids)) != len(ids):
            raise ValueError(f"set_routes: duplicate Space ids in {sorted(ids)}")
        body = table_json(routes).encode()
        served = await self._request("GET", "/routes")
        if served.content.strip() == body:
            return  # nothing changed
        self.settings.run_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.routes_file.with_name(f".{self.routes_file.name}.{os.getpid()}")
        tmp.write_bytes(body)
        os.replace(tmp, self.routes_file)  # what a restarted nginx loads
        await self._request("PUT", "/routes", body)

    async def add_route(self, route: Route) -> None:
        routes = await self.get_all_routes()
        routes[route.space_id] = route
        await self.set_routes(list(routes.values()))

    async def delete_route(self, space_id: str) -> None:
        routes = await self.get_all_routes()
        if routes.pop(space_id, None) is not None:
            await self.set_routes(list(routes.values()))

    async def get_all_routes(self) -> dict[str, Route]:
        raw = (await self._request("GET", "/routes")).json()
        out = {}
        for item in raw.get("routes", []):
            try:
                route = route_from_json(item)
            except (KeyError, TypeError, ValueError):
                continue  # written by hand beyond recognition: the next set_routes replaces it
            out[route.space_id] = route
        return out

    async def traffic(self) -> dict[str, SpaceTraffic]:
        raw = (await self._request("GET", "/traffic")).json()
        bounds = [str(b) for b in raw.get("bounds", [])]
        out = {}
        for space_id, t in (raw.get("spaces") or {}).items():
            buckets: dict[str, float] = {}
            running = 0.0
            for bound in bounds:  # nginx counts each request once; Prometheus wants "<= le"
                running += float(t.get("buckets", {}).get(bound, 0))
                buckets[bound] = running
            buckets["+Inf"] = float(t.get("requests", 0))
            out[space_id] = SpaceTraffic(
                requests=float(t.get("requests", 0)),
                errors=float(t.get("errors", 0)),
                in_flight=float(t.get("in_flight", 0)),
                duration_sum=float(t.get("sum", 0)),
                duration_count=float(t.get("requests", 0)),
                duration_buckets=buckets,
            )
        return out

    async def served_certs_digest(self) -> str:
        """The digest of the certificate table nginx serves ("" before any push)."""
        return str((await self._request("GET", "/certs")).json().get("digest", ""))

    async def set_certs(self, table: dict[str, dict[str, str]], digest: str) -> None:
        """Replace the certificate table nginx serves ({SNI name: {cert, key}}): the next
        handshake uses it, no reload (proxy/tls.py)."""
        body = json.dumps({"digest": digest, "certs": table}).encode()
        await self._request("PUT", "/certs", body)

    async def put_challenge(self, token: str, key_authorization: str) -> None:
        """Answer `/.well-known/acme-challenge/<token>` on the HTTP port (an ACME order)."""
        await self._request("PUT", f"/challenges/{token}", key_authorization.encode())

    async def delete_challenge(self, token: str) -> None:
        await self._request("DELETE", f"/challenges/{token}")

    async def health(self) -> bool:
        state = await health(self.settings.nginx_admin_socket, timeout=2.0)
        return state is not None and state.get("listen") == self.settings.listen

    async def stop(self) -> None:
        if self.process is not None:
            await self.process.stop()
