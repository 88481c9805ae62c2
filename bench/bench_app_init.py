"""What spaceport-init costs an app and saves the node, side by side in one run
(docs/benchmarks.md, "Log rate cap"): the same containers started by the runtime's own
DockerBackend with the init (the default) and without it (`log_rate` 0), interleaved, medians.

(a) start: `DockerBackend.start` until a bare Python server answers HTTP (the init is compiled
    once before; each start copies it into the container);
(b) a log flood: a Python loop printing 1 KB lines as fast as it can for `--flood` seconds;
    the engine's own CPU seconds (dockerd, which encodes every line) and the flooding app's,
    and the lines that reached the log (`docker logs`, so after the rotation's cap);
(c) a chatty app under the cap (`--chatty` KB/s of lines): its CPU seconds, what the init's
    copy costs an app that is not capped.

    .venv/bin/python bench/bench_app_init.py [--rounds 3] [--flood 8] [--json out.json]

Needs: Docker (as root: the apps' network is firewalled like the node's), the base image
`spaceport/python:3.11`, gcc.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import docker
import httpx
from bench_proxy import comparison, say, table  # this folder is on sys.path when the script runs

from spaceport.engine import app_init
from spaceport.engine.base import ContainerSpec
from spaceport.engine.docker_backend import DockerBackend
from spaceport.settings import Settings

IMAGE = "spaceport/python:3.11"
MODES = ("without", "with")
FLOOD = (
    "import sys, time\nline = 'flood ' * 170 + chr(10)\nt = time.time() + {seconds}\n"
    "while time.time() < t: sys.stdout.write(line * 64)\nsys.stdout.flush()\ntime.sleep(600)"
)
CHATTY = (
    "import sys, time\nline = 'chatty ' * 146 + chr(10)\nt = time.time() + {seconds}\n"
    "while time.time() < t:\n    sys.stdout.write(line * {lines_per_tick}); sys.stdout.flush()"
    "\n    time.sleep(0.01)\ntime.sleep(600)"
)


def backend(data: Path, mode: str) -> DockerBackend:
    rate = {} if mode == "with" else {"log_rate": 0}
    return DockerBackend(Settings(data=data, instance="bench-init", **rate))  # type: ignore[arg-type]


def spec(command: list[str]) -> ContainerSpec:
    name = f"bench-init-{uuid.uuid4().hex[:8]}"
    return ContainerSpec(
        space_id="bench/init", deployment_id=0, image=IMAGE, name=name, port=7860, command=command
    )


def start_to_http(b: DockerBackend) -> float:
    t0 = time.perf_counter()
    state = b.start(spec(["python", "-m", "http.server", "7860"]))
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://{state.upstream}/", timeout=2).status_code < 500:
                    return time.perf_counter() - t0
            except httpx.HTTPError:
                time.sleep(0.02)
        raise RuntimeError("the server did not answer in 60 s")
    finally:
        b.stop(state.id, timeout=0)


def dockerd_cpu_s() -> float:
    """dockerd's user + system CPU seconds, from /proc (the engine runs on this machine)."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if stat.with_name("comm").read_text().strip() == "dockerd":
                total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            continue
    return total


def container_cpu_s(client: docker.DockerClient, container_id: str) -> float:
    stats = client.api.stats(container_id, stream=False)
    return float(stats["cpu_stats"]["cpu_usage"]["total_usage"]) / 1e9


def run_for(b: DockerBackend, program: str, seconds: float) -> dict[str, float]:
    """Start `program`, let it run its `seconds`, and measure the engine and the app."""
    client = docker.from_env()
    engine0 = dockerd_cpu_s()
    state = b.start(spec(["python", "-c", program]))
    try:
        time.sleep(seconds + 1.5)
        engine = dockerd_cpu_s() - engine0
        app = container_cpu_s(client, state.id)
        logged = client.api.logs(state.id, stdout=True, stderr=False)
        lines = logged.count(b"\n")
        kept = sum(1 for line in logged.splitlines() if line.startswith(b"[spaceport] "))
    finally:
        b.stop(state.id, timeout=0)
    return {"engine_cpu_s": engine, "app_cpu_s": app, "log_lines": lines - kept, "notes": kept}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--flood", type=float, default=8.0, help="seconds of flood")
    ap.add_argument("--chatty", type=int, default=200, help="KB/s the chatty app logs")
    ap.add_argument("--json", type=Path, help="also write the numbers here")
    args = ap.parse_args()
    data = Path(tempfile.mkdtemp(prefix="bench-init-"))
    backends = {mode: backend(data, mode) for mode in MODES}
    app_init.binary(backends["with"].settings)  # compiled once, as on a node
    settings = backends["with"].settings
    flood = FLOOD.format(seconds=args.flood)
    chatty = CHATTY.format(seconds=args.flood, lines_per_tick=max(1, args.chatty // 100))
    results: dict[str, dict[str, list[float]]] = {m: {} for m in MODES}
    for r in range(args.rounds):
        for mode in MODES:
            b, res = backends[mode], results[mode]
            res.setdefault("start_s", []).append(start_to_http(b))
            for key, value in run_for(b, flood, args.flood).items():
                res.setdefault(f"flood_{key}", []).append(value)
            for key, value in run_for(b, chatty, args.flood).items():
                res.setdefault(f"chatty_{key}", []).append(value)
            say(
                f"  round {r + 1}: {mode} init: start {res['start_s'][-1]:.3f} s; flood: "
                f"engine {res['flood_engine_cpu_s'][-1]:.2f} s CPU, app "
                f"{res['flood_app_cpu_s'][-1]:.2f} s, {res['flood_log_lines'][-1]:,.0f} lines "
                f"kept; chatty: app {res['chatty_app_cpu_s'][-1]:.2f} s CPU"
            )
    med = {m: {k: statistics.median(v) for k, v in results[m].items()} for m in MODES}
    rows = comparison(
        ("", "without the init", "with it", "with / without"),
        med["without"],
        med["with"],
        [
            ("start_s", "start to HTTP, bare Python server", "{:.3f} s"),
            ("flood_engine_cpu_s", f"flood ({args.flood:.0f} s): the engine's CPU", "{:.2f} s"),
            ("flood_app_cpu_s", "flood: the app's CPU (init included)", "{:.2f} s"),
            ("flood_log_lines", "flood: lines in the log at the end", "{:,.0f}"),
            ("chatty_engine_cpu_s", f"chatty ({args.chatty} KB/s): the engine's CPU", "{:.2f} s"),
            ("chatty_app_cpu_s", "chatty: the app's CPU (init included)", "{:.2f} s"),
            ("chatty_log_lines", "chatty: lines in the log", "{:,.0f}"),
        ],
    )
    say(f"cap: {int(settings.log_rate):,} bytes/s per stream, burst {int(settings.log_burst):,}")
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps({"runs": results, "medians": med}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
