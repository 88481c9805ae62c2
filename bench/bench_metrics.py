"""What collecting metrics costs, measured side by side in one run (docs/benchmarks.md, "Metrics").

(a) API: two control planes on the same code, one with `SPACEPORT_METRICS=true` (the request
    latency histogram on every request) and one with it off; wrk on `GET /api/v1/health` (the
    cheapest route: the largest share for the middleware) and `GET /api/whoami-v2` (a token
    looked up in the database, like most API calls).
(b) Proxy: Spaceport's nginx exactly as it runs (its Lua counts each request per Space: the
    numbers behind `spaceport_space_*` and the sleep timer) against the same nginx with its
    `log_by_lua` counting removed, both in front of one tiny upstream (a plain nginx answering
    "ok"). The counting cannot be turned off in a real node (the sleep timer reads it); (b)
    says what it costs.
(c) One recorded event (`telemetry.count`: a Redis round trip, in the process where a build,
    deploy, sleep or wake happens), in milliseconds.

Variants run interleaved, `--rounds` times each, and the median is reported, because other work
on a small shared machine moves single runs by tens of percent.

    .venv/bin/python bench/bench_metrics.py [--duration 5] [--connections 16] [--rounds 3]

Needs: wrk and nginx (with its Lua module) on PATH, Redis on 127.0.0.1:6379 (database
`--redis-db`, flushed).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from bench_proxy import Target, free_port, measure, ratio, say, table

from spaceport.proxy import Route
from spaceport.proxy.nginx import NginxProxy
from spaceport.proxy.resolver import serve_in_thread
from spaceport.settings import Settings

TOKEN = "sp_bench_metrics_admin_token"
UPSTREAM_CONF = """worker_processes 1;
pid {run}/nginx.pid;
error_log {run}/error.log;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {run}/b; proxy_temp_path {run}/p; fastcgi_temp_path {run}/f;
  uwsgi_temp_path {run}/u; scgi_temp_path {run}/s;
  server {{ listen 127.0.0.1:{port}; keepalive_requests 1000000;
           location / {{ return 200 "ok\\n"; }} }}
}}
"""


class UncountedNginx(NginxProxy):
    """Spaceport's nginx without its per-Space counting (the `log_by_lua` phase)."""

    def render(self, daemon: bool = True) -> str:
        lines = super().render(daemon).splitlines()
        return "\n".join(line for line in lines if "log_by_lua_block" not in line) + "\n"


# --- (a) the API ---------------------------------------------------------------------------------


@contextmanager
def api(metrics: bool, redis_db: int) -> Iterator[str]:
    """A control plane (no reconciler) on its own data dir; yields its base URL."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="sp-bench-metrics-") as data:
        env = {
            **os.environ,
            "SPACEPORT_DATA": data,
            "SPACEPORT_API_PORT": str(port),
            "SPACEPORT_ADMIN_TOKEN": TOKEN,
            "SPACEPORT_REDIS_URL": f"redis://127.0.0.1:6379/{redis_db}",
            "SPACEPORT_METRICS": "true" if metrics else "false",
        }
        code = (
            "import uvicorn; from spaceport.api.app import create_app; "
            f"uvicorn.run(create_app(reconcile=False), host='127.0.0.1', port={port}, "
            "log_level='warning', access_log=False)"
        )
        proc = subprocess.Popen([sys.executable, "-c", code], env=env)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    if httpx.get(f"{url}/api/v1/health", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.2)
            yield url
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def wrk_with_token(target: Target) -> None:
    """wrk sends the admin token (bench_proxy.wrk sends only a Host header)."""
    target.host = f"{target.host}\r\nAuthorization: Bearer {TOKEN}"


# --- (b) the proxy -------------------------------------------------------------------------------


@contextmanager
def upstream() -> Iterator[str]:
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="sp-bench-upstream-") as run:
        conf = Path(run) / "nginx.conf"
        conf.write_text(UPSTREAM_CONF.format(run=run, port=port))
        subprocess.run([binary, "-c", str(conf), "-p", run], check=True)
        try:
            time.sleep(0.3)
            yield f"127.0.0.1:{port}"
        finally:
            subprocess.run([binary, "-c", str(conf), "-p", run, "-s", "stop"], check=False)


@contextmanager
def proxy(kind: type[NginxProxy], route: Route) -> Iterator[int]:
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="sp-bm-") as data:
        settings = Settings(
            data=Path(data), listen=f"127.0.0.1:{port}", api_port=free_port(), proxy="nginx"
        )
        nginx = kind(settings)
        resolver = serve_in_thread(settings)
        asyncio.run(nginx.start())
        try:
            asyncio.run(nginx.set_routes([route]))
            yield port
        finally:
            asyncio.run(nginx.stop())
            resolver.close()


# --- (c) one event, one scrape -------------------------------------------------------------------


def event_ms(redis_db: int, n: int = 2000) -> float:
    from spaceport import telemetry

    settings = Settings(redis_url=f"redis://127.0.0.1:6379/{redis_db}")
    started = time.perf_counter()
    for _ in range(n):
        telemetry.count("spaceport_sleeps", settings=settings, tier="bench")
    return (time.perf_counter() - started) * 1000 / n


def middleware_us(n: int = 20000) -> tuple[float, float]:
    """One request through a trivial ASGI app, with and without the latency middleware
    (api/request_metrics.py), in microseconds: its own cost, without the machine's noise."""
    from spaceport.api.request_metrics import RequestMetrics

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: Any) -> None:
        return None

    scope = {"type": "http", "method": "GET", "path": "/api/v1/health"}

    async def run(handler: Any) -> float:
        started = time.perf_counter()
        for _ in range(n):
            await handler(dict(scope), receive, send)
        return (time.perf_counter() - started) * 1e6 / n

    timed = RequestMetrics(app)
    bare, with_metrics = [], []
    for _ in range(5):  # interleaved
        bare.append(asyncio.run(run(app)))
        with_metrics.append(asyncio.run(run(timed)))
    return min(bare), min(with_metrics)


def row(what: str, on: Target, off: Target) -> tuple[str, ...]:
    errors = f"{on.errors}/{off.errors}"
    return (what, f"{on.rps:,.0f}", f"{off.rps:,.0f}", ratio(on, off), errors)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, default=5.0)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--redis-db", type=int, default=14)
    args = ap.parse_args()
    import redis

    redis.Redis.from_url(f"redis://127.0.0.1:6379/{args.redis_db}").flushdb()
    say(f"load before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    rows: list[tuple[str, ...]] = [
        ("what", "metrics on req/s", "off req/s", "on/off", "errors (on/off)")
    ]
    with api(True, args.redis_db) as on_url, api(False, args.redis_db) as off_url:
        for path in ("/api/v1/health", "/api/whoami-v2"):
            on = Target(f"API {path}, metrics on", f"{on_url}{path}", "localhost")
            off = Target(f"API {path}, metrics off", f"{off_url}{path}", "localhost")
            for t in (on, off):
                wrk_with_token(t)
            measure([on, off], args.rounds, args.duration, args.connections)
            rows.append(row(f"API `{path}`", on, off))
    with upstream() as up:
        route = Route("bench/app", ("bench-app.localhost",), up)
        with proxy(NginxProxy, route) as counted, proxy(UncountedNginx, route) as uncounted:
            on = Target("proxy, counted", f"http://127.0.0.1:{counted}/", "bench-app.localhost")
            off = Target(
                "proxy, uncounted", f"http://127.0.0.1:{uncounted}/", "bench-app.localhost"
            )
            measure([on, off], args.rounds, args.duration, args.connections)
            rows.append(row("proxy (app route)", on, off))
    event = event_ms(args.redis_db)
    bare, timed = middleware_us()
    say(f"load after: {os.getloadavg()[0]:.2f}")
    print(table(rows))
    print()
    print(f"one recorded event (telemetry.count, Redis): {event:.3f} ms")
    print(
        f"one request through a trivial ASGI app: {bare:.1f} us bare, {timed:.1f} us with the "
        f"latency middleware (+{timed - bare:.1f} us)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
