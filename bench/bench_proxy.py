"""Proxy benchmarks, measured side by side in one run with wrk (docs/benchmarks.md, "Proxy").

(a) a real Gradio app (examples/gradio-hello) reached directly and through Spaceport's proxy;
(b) a tiny upstream (nginx answering "ok" in a container) reached directly, through Spaceport's
    proxy (both backends, each started and configured exactly as Spaceport does: nginx with
    its Lua route table, Caddy with the config Spaceport renders) and through a plain nginx
    reverse proxy; the plain nginx and Spaceport's nginx also dial the container through its
    published loopback port (Docker's userland proxy), all of them on the engine's network;
(c) routing changes, per backend: how long until a change is live, and what a load running
    meanwhile sees: moves of one Space's app from one container to another (what deploys,
    restarts, sleeps and wakes do) and additions and removals of routes (Caddy reloads for
    these; nginx reloads for nothing).

Variants run interleaved, `--rounds` times each, and the median is reported, because other work
on a small shared machine moves single runs by tens of percent.

    .venv/bin/python bench/bench_proxy.py [--duration 8] [--connections 32] [--rounds 3]

Needs: a Docker engine with the base image spaceport/python:3.11 (spaceport images build),
wrk and nginx on PATH, and PyPI reachable from builds (the Gradio image, once).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import docker
import httpx

from spaceport.proxy import Proxy, Route, make_proxy
from spaceport.proxy.resolver import serve_in_thread
from spaceport.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
LABEL = {"org.spaceport.bench": "proxy"}
TINY_IMAGE = "spaceport-bench/tiny:latest"
GRADIO_IMAGE = "spaceport-bench/gradio-hello:latest"
TINY_DOCKERFILE = """FROM spaceport/python:3.11
USER root
RUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \\
    --no-install-recommends nginx-light >/dev/null && rm -rf /var/lib/apt/lists/*
COPY tiny.conf /etc/nginx/tiny.conf
USER 1000
EXPOSE 8080
CMD ["nginx", "-c", "/etc/nginx/tiny.conf", "-g", "daemon off;"]
"""
TINY_CONF = """worker_processes 1;
pid /tmp/nginx.pid;
error_log stderr;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path /tmp/b; proxy_temp_path /tmp/p; fastcgi_temp_path /tmp/f;
  uwsgi_temp_path /tmp/u; scgi_temp_path /tmp/s;
  server {
    listen 8080; keepalive_requests 1000000;
    location / { add_header X-Served-By $server_addr always; return 200 "ok\\n"; }
  }
}
"""
GRADIO_DOCKERFILE = """FROM spaceport/python:3.11
WORKDIR /home/user/app
RUN --mount=type=cache,target=/home/user/.cache/uv,uid=1000,gid=1000,sharing=shared \\
    uv pip install gradio
COPY --chown=1000:1000 app.py /home/user/app/app.py
ENV GRADIO_SERVER_NAME=0.0.0.0 GRADIO_ANALYTICS_ENABLED=False
EXPOSE 7860
CMD ["python", "app.py"]
"""
NGINX_CONF = """worker_processes 1;
pid {run}/nginx.pid;
error_log {run}/nginx-error.log;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {run}/b; proxy_temp_path {run}/p; fastcgi_temp_path {run}/f;
  uwsgi_temp_path {run}/u; scgi_temp_path {run}/s;
  upstream by_ip {{ server {ip}; keepalive 64; }}
  upstream by_port {{ server {published}; keepalive 64; }}
  server {{
    listen 127.0.0.1:{port_ip};
    location / {{ proxy_pass http://by_ip; proxy_http_version 1.1;
                 proxy_set_header Connection ""; proxy_set_header Host $http_host; }}
  }}
  server {{
    listen 127.0.0.1:{port_published};
    location / {{ proxy_pass http://by_port; proxy_http_version 1.1;
                 proxy_set_header Connection ""; proxy_set_header Host $http_host; }}
  }}
}}
"""


def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- wrk ---------------------------------------------------------------------------------------


@dataclass
class Run:
    rps: float
    p50_ms: float
    errors: int  # socket errors + non-2xx/3xx responses


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def wrk(url: str, host: str, duration: float, connections: int) -> Run:
    threads = max(1, min(2, connections))
    out = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{max(1, round(duration))}s",
            "--latency",
            "-H",
            f"Host: {host}",
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = re.search(r"^\s+50%\s+([\d.]+)(us|ms|s)$", out, re.M)
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors += int(non2xx.group(1)) if non2xx else 0
    p50_ms = float(p50.group(1)) * _UNITS[p50.group(2)] if p50 else float("nan")
    return Run(rps, p50_ms, errors)


@dataclass
class Target:
    name: str
    url: str
    host: str
    runs: list[Run] = field(default_factory=list)
    latency: list[Run] = field(default_factory=list)

    @property
    def rps(self) -> float:
        return statistics.median(r.rps for r in self.runs)

    @property
    def p50_ms(self) -> float:
        return statistics.median(r.p50_ms for r in self.latency or self.runs)

    @property
    def errors(self) -> int:
        return sum(r.errors for r in self.runs + self.latency)


def measure(targets: list[Target], rounds: int, duration: float, connections: int) -> None:
    """Throughput at `connections`, then the median latency of one connection, interleaved."""
    for r in range(rounds):
        for t in targets:
            t.runs.append(wrk(t.url, t.host, duration, connections))
            t.latency.append(wrk(t.url, t.host, duration / 2, 1))
            say(
                f"  round {r + 1}: {t.name}: {t.runs[-1].rps:,.0f} req/s, "
                f"p50 {t.latency[-1].p50_ms:.3f} ms (1 conn)"
            )


# --- the parts ---------------------------------------------------------------------------------


def build(client: docker.DockerClient, tag: str, files: dict[str, str | Path]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for name, content in files.items():
            dst = Path(tmp) / name
            if isinstance(content, Path):
                shutil.copy(content, dst)
            else:
                dst.write_text(content)
        say(f"building {tag}")
        subprocess.run(
            ["/usr/bin/docker", "build", "-q", "-t", tag, tmp],
            env={**os.environ, "DOCKER_BUILDKIT": "1"},
            check=True,
            capture_output=True,
        )


@dataclass
class Container:
    ip: str  # host:port on the engine's network
    published: str  # 127.0.0.1:port (Docker's userland proxy)


@contextmanager
def container(client: docker.DockerClient, image: str, port: int) -> Iterator[Container]:
    c = client.containers.run(
        image,
        detach=True,
        labels=LABEL,
        ports={f"{port}/tcp": ("127.0.0.1", None)},
        user="1000:1000",
    )
    try:
        c.reload()
        ip = c.attrs["NetworkSettings"]["IPAddress"]
        published = c.attrs["NetworkSettings"]["Ports"][f"{port}/tcp"][0]["HostPort"]
        box = Container(f"{ip}:{port}", f"127.0.0.1:{published}")
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://{box.ip}/", timeout=2).status_code < 500:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        yield box
    finally:
        c.remove(force=True)


@contextmanager
def spaceport_proxy(routes: list[Route], backend: str) -> Iterator[tuple[Proxy, int]]:
    """The backend exactly as Spaceport runs it: its own process, the routes it renders."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="sp-bench-") as data:
        settings = Settings(
            data=Path(data), listen=f"127.0.0.1:{port}", api_port=free_port(), proxy=backend
        )
        proxy = make_proxy(settings)
        resolver = serve_in_thread(settings)
        asyncio.run(proxy.start())
        try:
            asyncio.run(proxy.set_routes(routes))
            yield proxy, port
        finally:
            asyncio.run(proxy.stop())
            resolver.close()


@contextmanager
def nginx_proxy(upstream: Container) -> Iterator[tuple[int, int]]:
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    port_ip, port_published = free_port(), free_port()
    with tempfile.TemporaryDirectory(prefix="nginx-bench-") as run:
        conf = Path(run) / "nginx.conf"
        conf.write_text(
            NGINX_CONF.format(
                run=run,
                ip=upstream.ip,
                published=upstream.published,
                port_ip=port_ip,
                port_published=port_published,
            )
        )
        subprocess.run([binary, "-c", str(conf), "-p", run], check=True)
        try:
            time.sleep(0.3)
            yield port_ip, port_published
        finally:
            subprocess.run([binary, "-c", str(conf), "-p", run, "-s", "stop"], check=False)


# --- (c) routing changes -----------------------------------------------------------------------


def _timed_change(
    proxy: Proxy, client: httpx.Client, routes: list[Route], host: str, live: Any
) -> float:
    """Apply `routes`; milliseconds until a request for `host` passes `live(response)`."""
    started = time.perf_counter()
    worker = threading.Thread(target=lambda: asyncio.run(proxy.set_routes(routes)))
    worker.start()
    while True:
        try:
            if live(client.get("/", headers={"Host": host})):
                break
        except httpx.TransportError:
            continue
    elapsed = (time.perf_counter() - started) * 1000
    worker.join()
    return elapsed


def route_changes(
    proxy: Proxy,
    port: int,
    base: list[Route],
    apps: tuple[Container, Container],
    changes: int,
    duration: float,
) -> dict[str, dict[str, float]]:
    """While wrk loads one Space: `changes` moves of another Space between two containers,
    then `changes` additions/removals of a route; apply times and what the load saw."""
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5)
    out: dict[str, dict[str, float]] = {}

    def moves(i: int) -> float:
        target = apps[i % 2]
        moved = Route("bench/moving", ("bench-moving.localhost",), target.ip)
        return _timed_change(
            proxy,
            client,
            [*base, moved],
            "bench-moving.localhost",
            lambda r, ip=target.ip: r.headers.get("x-served-by") == ip.split(":")[0],
        )

    def reloads(i: int) -> float:
        ghost = Route(f"bench/ghost-{i}", (f"bench-ghost-{i}.localhost",), apps[0].ip)
        want = 200 if i % 2 == 0 else 502
        routes = base + ([ghost] if want == 200 else [])
        host = f"bench-ghost-{i - (i % 2)}.localhost"
        return _timed_change(
            proxy, client, routes, host, lambda r: (r.status_code == 200) == (want == 200)
        )

    # The moving Space's route exists before the load starts: its moves then reload nothing.
    asyncio.run(
        proxy.set_routes([*base, Route("bench/moving", ("bench-moving.localhost",), apps[1].ip)])
    )
    for name, change in (("moves", moves), ("added/removed routes", reloads)):
        result: dict[str, Run] = {}
        load = threading.Thread(
            target=lambda result=result: result.update(
                run=wrk(f"http://127.0.0.1:{port}/", "bench-tiny.localhost", duration, 16)
            )
        )
        load.start()
        time.sleep(0.5)
        apply_ms: list[float] = []
        for i in range(changes):
            apply_ms.append(change(i))
            time.sleep(max(0.0, (duration - 1) / changes - apply_ms[-1] / 1000))
        load.join()
        out[name] = {
            "changes": changes,
            "apply_ms_median": statistics.median(apply_ms),
            "apply_ms_max": max(apply_ms),
            "load_rps": result["run"].rps,
            "load_errors": result["run"].errors,
        }
    client.close()
    return out


# --- main --------------------------------------------------------------------------------------


def comparison(
    header: tuple[str, str, str, str],
    base: dict[str, float],
    other: dict[str, float],
    specs: list[tuple[str, str, str]],
) -> list[tuple[str, ...]]:
    """Rows of a side-by-side table: each (key, label, format) as base, other and other/base."""
    rows: list[tuple[str, ...]] = [header]
    for key, label, fmt in specs:
        ratio = other[key] / base[key] if base[key] else float("nan")
        rows.append((label, fmt.format(base[key]), fmt.format(other[key]), f"{ratio:.2f}x"))
    return rows


def ratio(a: Target, b: Target) -> str:
    """a/b of the median req/s, and the median of the rounds' own a/b (each round runs a and b
    within seconds of each other, so it sees the same load on the machine)."""
    per_round = statistics.median(x.rps / y.rps for x, y in zip(a.runs, b.runs, strict=True))
    return f"{a.rps / b.rps:.2f}x (per round: {per_round:.2f}x)"


def table(rows: list[tuple[str, ...]]) -> str:
    head, *body = rows
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in body]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, default=8.0, help="seconds per wrk run")
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--changes", type=int, default=20)
    ap.add_argument("--json", type=Path, help="also write the numbers here")
    args = ap.parse_args()
    for tool in ("wrk", "nginx"):
        if not shutil.which(tool) and not Path(f"/usr/sbin/{tool}").exists():
            say(f"{tool} is missing: apt-get install -y {tool if tool == 'wrk' else 'nginx-light'}")
            return 2
    client = docker.from_env()
    build(client, TINY_IMAGE, {"Dockerfile": TINY_DOCKERFILE, "tiny.conf": TINY_CONF})
    build(
        client,
        GRADIO_IMAGE,
        {"Dockerfile": GRADIO_DOCKERFILE, "app.py": ROOT / "examples" / "gradio-hello" / "app.py"},
    )
    out: dict[str, object] = {
        "machine": f"{os.cpu_count()} cores",
        "args": vars(args) | {"json": str(args.json) if args.json else None},
    }
    with (
        container(client, TINY_IMAGE, 8080) as tiny,
        container(client, TINY_IMAGE, 8080) as tiny2,
        container(client, GRADIO_IMAGE, 7860) as gradio,
    ):
        routes = [
            Route("bench/tiny", ("bench-tiny.localhost",), tiny.ip),
            Route("bench/tiny-published", ("bench-tiny-published.localhost",), tiny.published),
            Route("bench/gradio", ("bench-gradio.localhost",), gradio.ip),
            Route(
                "bench/gradio-published", ("bench-gradio-published.localhost",), gradio.published
            ),
        ]
        with (
            spaceport_proxy(routes, "nginx") as (sp_nginx, port),
            spaceport_proxy(routes, "caddy") as (sp_caddy, c_port),
            nginx_proxy(tiny) as (n_ip, n_pub),
        ):
            sp, cd = f"http://127.0.0.1:{port}/", f"http://127.0.0.1:{c_port}/"
            say("(b) tiny upstream")
            tiny_targets = [
                Target("direct, container IP", f"http://{tiny.ip}/", "tiny"),
                Target("direct, published port", f"http://{tiny.published}/", "tiny"),
                Target("nginx -> container IP", f"http://127.0.0.1:{n_ip}/", "tiny"),
                Target("nginx -> published port", f"http://127.0.0.1:{n_pub}/", "tiny"),
                Target("Spaceport (nginx) -> container IP", sp, f"bench-tiny.localhost:{port}"),
                Target(
                    "Spaceport (nginx) -> published port",
                    sp,
                    f"bench-tiny-published.localhost:{port}",
                ),
                Target("Spaceport (Caddy) -> container IP", cd, f"bench-tiny.localhost:{c_port}"),
            ]
            measure(tiny_targets, args.rounds, args.duration, args.connections)
            say("(a) Gradio app, GET /config")
            # Gradio's answer costs more for a named Host than for an IP one (~9% here): the
            # row with the public Host is the same request the proxy passes on.
            gradio_targets = [
                Target("direct, container IP", f"http://{gradio.ip}/config", gradio.ip),
                Target(
                    "direct, container IP, the public Host header",
                    f"http://{gradio.ip}/config",
                    f"bench-gradio.localhost:{port}",
                ),
                Target("direct, published port", f"http://{gradio.published}/config", "gradio"),
                Target(
                    "Spaceport (nginx) -> container IP",
                    sp + "config",
                    f"bench-gradio.localhost:{port}",
                ),
                Target(
                    "Spaceport (Caddy) -> container IP",
                    cd + "config",
                    f"bench-gradio.localhost:{c_port}",
                ),
            ]
            measure(gradio_targets, args.rounds, args.duration, min(args.connections, 8))
            say("(c) routing changes under load")
            changes = {
                f"{backend}: {kind}": numbers
                for backend, proxy, at in (("nginx", sp_nginx, port), ("Caddy", sp_caddy, c_port))
                for kind, numbers in route_changes(
                    proxy, at, routes, (tiny, tiny2), args.changes, 12.0
                ).items()
            }
    rows: list[tuple[str, ...]] = [("(b) tiny upstream", "req/s", "p50, 1 conn", "errors")]
    rows += [(t.name, f"{t.rps:,.0f}", f"{t.p50_ms:.3f} ms", str(t.errors)) for t in tiny_targets]
    print(table(rows) + "\n")
    rows = [("(a) Gradio GET /config", "req/s", "p50, 1 conn", "errors")]
    rows += [(t.name, f"{t.rps:,.0f}", f"{t.p50_ms:.3f} ms", str(t.errors)) for t in gradio_targets]
    print(table(rows) + "\n")
    rows = [("(c) routing changes", "live after, median", "max", "load req/s", "load errors")]
    rows += [
        (
            kind,
            f"{c['apply_ms_median']:.0f} ms",
            f"{c['apply_ms_max']:.0f} ms",
            f"{c['load_rps']:,.0f}",
            f"{c['load_errors']:.0f}",
        )
        for kind, c in changes.items()
    ]
    print(table(rows) + "\n")
    tiny_by = {t.name: t for t in tiny_targets}
    gradio_by = {t.name: t for t in gradio_targets}
    ratios = []
    same_host = "direct, container IP, the public Host header"
    for backend in ("nginx", "Caddy"):
        key = f"Spaceport ({backend}) -> container IP"
        ratios += [
            (
                f"{backend}: tiny upstream, of plain nginx's req/s (target >= 0.50)",
                ratio(tiny_by[key], tiny_by["nginx -> container IP"]),
            ),
            (
                f"{backend}: Gradio, of direct req/s, same Host (target >= 0.95)",
                ratio(gradio_by[key], gradio_by[same_host]),
            ),
            (
                f"{backend}: Gradio, of direct req/s by IP Host",
                ratio(gradio_by[key], gradio_by["direct, container IP"]),
            ),
            (
                f"{backend}: Gradio, median added, same Host (target < 1 ms)",
                f"{gradio_by[key].p50_ms - gradio_by[same_host].p50_ms:+.3f} ms",
            ),
        ]
    print(table([("ratio", "measured"), *ratios]))
    out["ratios"] = dict(ratios)
    out["tiny"] = {t.name: asdict(t) | {"rps": t.rps, "p50_ms": t.p50_ms} for t in tiny_targets}
    out["gradio"] = {t.name: asdict(t) | {"rps": t.rps, "p50_ms": t.p50_ms} for t in gradio_targets}
    out["route_changes"] = changes
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
