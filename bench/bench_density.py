"""Benchmark: how many idle Gradio apps this host keeps (docs/benchmarks.md, "Runtime").

Starts idle Gradio apps (examples/gradio-hello, its dependencies with bytecode, as Spaceport
builds them once warm) one after another, each created by the platform's own runtime backend
with the `cpu-basic` flavor's limits, security options, network and log settings, and waits
until each answers HTTP. An idle Gradio app is not idle for the CPU (its queue and server
loops wake many times a second), so the first `--awake` apps are measured awake (CPU over
`--cpu-window-s`), and every app is then frozen as Spaceport's light sleep does after a short
idle. It stops at `--apps`, or earlier when the host's available memory falls under
`--reserve-gib` (what the OS, the control plane and a build need). Then it reads what they
cost: the host's used memory (MemTotal - MemAvailable, before and after: this includes the
containerd shims and docker-proxy processes next to each app) and each app's cgroup memory
(what `docker stats` shows); and it wakes every app (unfreeze, one request, freeze again) to
show that each still answers. Everything it started is removed at the end.

    .venv/bin/python bench/bench_density.py [--apps 150] [--reserve-gib 1.5] [--json out.json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import docker
import httpx

from spaceport.engine.base import ContainerSpec, ContainerState, RuntimeBackendError
from spaceport.engine.docker_backend import DockerBackend
from spaceport.flavors import get_flavor
from spaceport.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
IMAGE = "spaceport-bench/gradio-compiled:latest"
DOCKERFILE = """FROM spaceport/python:3.11
WORKDIR /home/user/app
RUN --mount=type=cache,target=/home/user/.cache/uv,uid=1000,gid=1000,sharing=shared \\
    uv pip install --compile-bytecode gradio
COPY --chown=1000:1000 app.py /home/user/app/app.py
ENV GRADIO_SERVER_NAME=0.0.0.0 GRADIO_ANALYTICS_ENABLED=False
EXPOSE 7860
CMD ["python", "app.py"]
"""
MiB = 1024**2


def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def meminfo() -> dict[str, int]:
    out = {}
    for line in Path("/proc/meminfo").read_text().splitlines():
        key, value = line.split(":", 1)
        out[key] = int(value.split()[0]) * 1024
    return out


def used_bytes() -> int:
    info = meminfo()
    return info["MemTotal"] - info["MemAvailable"]


def cgroup_memory(container_id: str) -> int:
    """The container's memory as `docker stats` computes it: usage minus inactive file cache."""
    stats = docker.from_env().api.stats(container_id, stream=False, one_shot=True)
    mem = stats["memory_stats"]
    return int(mem["usage"] - mem.get("stats", {}).get("inactive_file", 0))


def cpu_ns(container_id: str) -> int:
    stats = docker.from_env().api.stats(container_id, stream=False, one_shot=True)
    return int(stats["cpu_stats"]["cpu_usage"]["total_usage"])


def awake_cpu(ids: list[str], window_s: float) -> float:
    """Mean share of one core each awake, idle app uses over `window_s`."""
    before = {i: cpu_ns(i) for i in ids}
    time.sleep(window_s)
    used = [cpu_ns(i) - before[i] for i in ids]
    return statistics.mean(used) / (window_s * 1e9)


def build_image() -> None:
    import subprocess

    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "Dockerfile").write_text(DOCKERFILE)
        (Path(tmp) / "app.py").write_text((ROOT / "examples/gradio-hello/app.py").read_text())
        say(f"building {IMAGE}")
        subprocess.run(
            ["docker", "build", "-q", "-t", IMAGE, tmp],
            check=True,
            capture_output=True,
            env={"DOCKER_BUILDKIT": "1", "PATH": "/usr/bin:/bin:/usr/sbin:/sbin"},
        )


def wait_http(upstream: str, timeout: float = 180) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            if httpx.get(f"http://{upstream}/config", timeout=5).status_code == 200:
                return time.monotonic() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"app at {upstream} did not answer in {timeout} s")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--apps", type=int, default=150)
    ap.add_argument("--reserve-gib", type=float, default=1.5)
    ap.add_argument("--awake", type=int, default=10, help="apps measured awake (CPU)")
    ap.add_argument("--cpu-window-s", type=float, default=20)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    build_image()
    flavor = get_flavor("cpu-basic")
    states: list[ContainerState] = []
    starts: list[float] = []
    stopped_by = "apps"
    cpu_share = 0.0
    with tempfile.TemporaryDirectory(prefix="sp-density-") as data:
        backend = DockerBackend(Settings(data=Path(data)))
        before = used_bytes()
        total = meminfo()["MemTotal"]
        try:
            for i in range(args.apps):
                if meminfo()["MemAvailable"] < args.reserve_gib * 1024**3:
                    stopped_by = "memory"
                    break
                spec = ContainerSpec(
                    space_id=f"bench/density-{i}",
                    deployment_id=100000 + i,
                    image=IMAGE,
                    name=f"sp-bench-density-{i}",
                    port=7860,
                    env={"GRADIO_SERVER_NAME": "0.0.0.0", "GRADIO_ANALYTICS_ENABLED": "False"},
                    cpus=flavor.cpus,
                    memory_bytes=flavor.memory_bytes,
                    pids=flavor.pids,
                )
                state = backend.start(spec)
                states.append(state)
                assert state.upstream, state
                starts.append(wait_http(state.upstream))
                if len(states) == args.awake:
                    say(f"{args.awake} apps awake and idle: measuring their CPU")
                    cpu_share = awake_cpu([s.id for s in states], args.cpu_window_s)
                # Frozen one app late: Gradio's launch() checks its own URL after the server
                # answers, and an app frozen during that check fails it when thawed and exits
                # ("When localhost is not accessible..."); Spaceport freezes only after
                # lifecycle/sleeper.py's minimum awake time.
                if len(states) == args.awake:
                    for s in states[:-1]:
                        backend.pause(s.id)
                elif len(states) > args.awake:
                    backend.pause(states[-2].id)
                if (i + 1) % 10 == 0:
                    say(
                        f"{i + 1} apps up; host memory used "
                        f"{(used_bytes() - before) / MiB:,.0f} MiB more, "
                        f"{meminfo()['MemAvailable'] / 1024**3:.1f} GiB available"
                    )
            time.sleep(5)
            backend.pause(states[-1].id)
            grown = used_bytes() - before
            per_app = [cgroup_memory(s.id) for s in states]
            say(f"{len(states)} apps frozen; waking each once")
            answering, wakes = 0, []
            dead: list[str] = []
            for s in states:
                started = time.monotonic()
                try:
                    backend.unpause(s.id)
                    with contextlib.suppress(httpx.HTTPError):
                        ok = httpx.get(f"http://{s.upstream}/config", timeout=30).is_success
                        answering += ok
                    wakes.append(time.monotonic() - started)
                    backend.pause(s.id)
                except RuntimeBackendError:  # it stopped: say how
                    now = backend.inspect(s.id)
                    dead.append(f"{s.name}: {now.status if now else 'gone'}")
                    if now is not None:
                        say(f"{s.name} {now.status} (exit {now.exit_code}, oom {now.oom_killed})")
                        say(backend.logs(s.id, tail=15))
            result = {
                "host_memory_gib": round(total / 1024**3, 1),
                "apps_started": len(states),
                "stopped_by": stopped_by,
                "apps_answering_when_woken": answering,
                "apps_stopped": dead,
                "host_memory_used_by_apps_mib": round(grown / MiB),
                "host_memory_per_app_mib": round(grown / MiB / max(1, len(states)), 1),
                "cgroup_memory_per_app_mib_median": round(statistics.median(per_app) / MiB, 1),
                "cgroup_memory_per_app_mib_max": round(max(per_app) / MiB, 1),
                "awake_idle_cpu_per_app_percent_of_core": round(100 * cpu_share, 1),
                "start_to_http_s_median": round(statistics.median(starts), 2),
                "start_to_http_s_max": round(max(starts), 2),
                "wake_to_answer_s_median": round(statistics.median(wakes), 3),
                "wake_to_answer_s_max": round(max(wakes), 3),
                "memory_available_at_end_gib": round(meminfo()["MemAvailable"] / 1024**3, 2),
            }
        finally:
            say(f"removing {len(states)} containers")
            for s in states:
                backend.stop(s.id, timeout=0)
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
