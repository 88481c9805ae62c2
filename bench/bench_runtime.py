"""What gVisor costs an app, measured side by side with runc in one run (docs/benchmarks.md,
"App runtimes"): the same containers under each runtime, interleaved, medians reported.

(a) start: `docker run` until the app answers HTTP, for a bare Python server and for the
    Gradio example app (import-heavy: most of a Space's start);
(b) requests: wrk against a tiny nginx app in the container (throughput at 32 connections,
    median latency of one connection), reached on the engine's network as Spaceport's proxy
    reaches apps;
(c) memory: what the engine reports for the idle Gradio app (for runsc this includes gVisor's
    own kernel in the sandbox).

    .venv/bin/python bench/bench_runtime.py [--rounds 3] [--duration 6] [--json out.json]

Needs: what bench_proxy.py needs, and gVisor registered as the engine runtime `runsc`
(scripts/register-gvisor.sh).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import docker
import httpx
from bench_proxy import (  # this folder is on sys.path when the script runs
    GRADIO_DOCKERFILE,
    GRADIO_IMAGE,
    ROOT,
    TINY_CONF,
    TINY_DOCKERFILE,
    TINY_IMAGE,
    build,
    comparison,
    say,
    table,
    wrk,
)
from docker.models.containers import Container

LABEL = {"org.spaceport.bench": "runtime"}
RUNTIMES = ("runc", "runsc")
BARE = ("spaceport/python:3.11", ["python", "-m", "http.server", "7860"], 7860)


def start(
    client: docker.DockerClient, runtime: str, image: str, cmd: list[str] | None, port: int
) -> tuple[Container, float, str]:
    """Run a container under `runtime`; returns it and the seconds until it answered HTTP."""
    t0 = time.perf_counter()
    c = client.containers.run(
        image,
        cmd,
        detach=True,
        labels=LABEL,
        runtime=runtime,
        user="1000:1000",
        cap_drop=["ALL"],
        security_opt=["no-new-privileges:true"],
        mem_limit="2g",
    )
    c.reload()
    url = f"http://{c.attrs['NetworkSettings']['IPAddress']}:{port}/"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return c, time.perf_counter() - t0, url
        except httpx.HTTPError:
            time.sleep(0.05)
    c.remove(force=True)
    raise RuntimeError(f"{image} under {runtime} did not answer in 180 s")


def memory_mib(c: Container) -> float:
    stats = c.stats(stream=False)
    usage = stats["memory_stats"]
    cache = usage.get("stats", {}).get("inactive_file", 0)
    return float(usage.get("usage", 0) - cache) / 2**20


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=float, default=6.0, help="seconds per wrk run")
    ap.add_argument("--json", type=Path, help="also write the numbers here")
    args = ap.parse_args()
    client = docker.from_env()
    if "runsc" not in (client.info().get("Runtimes") or {}):
        say("gVisor is not registered with the engine: sudo scripts/register-gvisor.sh")
        return 2
    build(client, TINY_IMAGE, {"Dockerfile": TINY_DOCKERFILE, "tiny.conf": TINY_CONF})
    build(
        client,
        GRADIO_IMAGE,
        {"Dockerfile": GRADIO_DOCKERFILE, "app.py": ROOT / "examples" / "gradio-hello" / "app.py"},
    )
    results: dict[str, dict[str, list[float]]] = {
        rt: {k: [] for k in ("bare_start_s", "gradio_start_s", "gradio_idle_mib", "rps", "p50_ms")}
        for rt in RUNTIMES
    }
    for r in range(args.rounds):
        for rt in RUNTIMES:
            res = results[rt]
            c, secs, _ = start(client, rt, *BARE)
            c.remove(force=True)
            res["bare_start_s"].append(secs)
            c, secs, _ = start(client, rt, GRADIO_IMAGE, None, 7860)
            res["gradio_start_s"].append(secs)
            time.sleep(3)
            res["gradio_idle_mib"].append(memory_mib(c))
            c.remove(force=True)
            c, _, url = start(client, rt, TINY_IMAGE, None, 8080)
            try:
                res["rps"].append(wrk(url, "tiny", args.duration, 32).rps)
                res["p50_ms"].append(wrk(url, "tiny", args.duration / 2, 1).p50_ms)
            finally:
                c.remove(force=True)
            say(
                f"  round {r + 1}: {rt}: bare start {res['bare_start_s'][-1]:.2f} s, Gradio start "
                f"{res['gradio_start_s'][-1]:.2f} s, idle {res['gradio_idle_mib'][-1]:.0f} MiB, "
                f"{res['rps'][-1]:,.0f} req/s, p50 {res['p50_ms'][-1]:.3f} ms"
            )
    med = {rt: {k: statistics.median(v) for k, v in results[rt].items()} for rt in RUNTIMES}
    rows = comparison(
        ("", "runc", "runsc (gVisor)", "runsc / runc"),
        med["runc"],
        med["runsc"],
        [
            ("bare_start_s", "start to HTTP, bare Python server", "{:.2f} s"),
            ("gradio_start_s", "start to HTTP, Gradio app", "{:.2f} s"),
            ("gradio_idle_mib", "idle Gradio app memory", "{:.0f} MiB"),
            ("rps", "tiny app, req/s at 32 connections", "{:,.0f}"),
            ("p50_ms", "tiny app, p50 of one connection", "{:.3f} ms"),
        ],
    )
    print(table(rows))
    if args.json:
        out = {"machine": f"{os.cpu_count()} cores", "medians": med, "runs": results}
        args.json.write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
