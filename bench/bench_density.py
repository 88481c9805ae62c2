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

Side by side in the same run, the compressed tier (lifecycle/compressor.py; skipped with
--no-compress or where the node has no zram swap): the `--awake` apps are thawed and timed warm,
then every app's idle memory is compressed as the runtime does (`NodeOps.compress_memory`,
its CPU and wall time measured), the host's memory read again; the awake apps stay awake for
`--cpu-window-s` (their CPU, and how much memory they touch back), are compressed again and
each timed on its first request; then the wake-each-once check runs on compressed apps.

    .venv/bin/python bench/bench_density.py [--apps 150] [--reserve-gib 1.5] [--json out.json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import docker
import httpx

from spaceport.engine import zram
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


def timed_get(upstream: str | None) -> float:
    started = time.monotonic()
    httpx.get(f"http://{upstream}/config", timeout=30).raise_for_status()
    return time.monotonic() - started


def thread_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_THREAD)
    return usage.ru_utime + usage.ru_stime


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def zram_stored() -> int:
    swap = zram.active()
    return swap.stored_bytes if swap else 0


def compressed_tier(
    backend: DockerBackend,
    states: list[ContainerState],
    args: argparse.Namespace,
    before: int,
    today_cgroup: float,
    outside: float,
) -> dict[str, object]:
    """The compressed tier on the same apps, measured the same way (module docstring).

    What an app costs is counted from its own parts, because other work on a shared machine
    moves the host's MemAvailable by hundreds of MiB: its cgroup memory, its share of the RAM
    zram took during this run, and what it costs outside its cgroup (shim, docker-proxy: the
    host's growth per app less its cgroup memory, measured before compression)."""
    sample = states[: args.awake]
    stored_before = zram_stored()
    warm = []
    for s in sample:
        backend.unpause(s.id)
        timed_get(s.upstream)
        warm.append(min(timed_get(s.upstream) for _ in range(3)))
    moved, cpu, wall, skipped = [], [], [], []
    say(f"compressing {len(states)} apps")
    for s in states:
        cpu_at, wall_at = thread_cpu_s(), time.monotonic()
        done = backend.compress_memory(s.id)
        cpu.append(thread_cpu_s() - cpu_at)
        wall.append(time.monotonic() - wall_at)
        moved.append(done.moved_bytes)
        if done.skipped:
            skipped.append(done.skipped)
    time.sleep(2)
    grown = used_bytes() - before
    per_app = [cgroup_memory(s.id) for s in states]
    swap = zram.active()
    say(f"{len(sample)} compressed apps awake for {args.cpu_window_s} s")
    cpu_share = awake_cpu([s.id for s in sample], args.cpu_window_s)
    regrown = [cgroup_memory(s.id) for s in sample]
    for s in sample:
        backend.compress_memory(s.id)
    time.sleep(1)
    first = [timed_get(s.upstream) for s in sample]
    for s in sample:
        backend.pause(s.id)
    zram_per_app = (zram_stored() - stored_before) / len(states)
    steady = statistics.median(regrown) + zram_per_app + outside
    return {
        "today_app_cost_mib": round((today_cgroup + outside) / MiB, 1),
        "outside_cgroup_per_app_mib": round(outside / MiB, 1),
        "zram_ram_per_app_mib": round(zram_per_app / MiB, 1),
        "compressed_host_memory_used_by_apps_mib": round(grown / MiB),
        "compressed_host_memory_per_app_mib": round(grown / MiB / len(states), 1),
        "compressed_cgroup_memory_per_app_mib_median": round(statistics.median(per_app) / MiB, 1),
        "compressed_awake_cgroup_memory_after_window_mib_median": round(
            statistics.median(regrown) / MiB, 1
        ),
        "compressed_app_cost_mib": round(steady / MiB, 1),
        "compressed_moved_per_app_mib_median": round(statistics.median(moved) / MiB, 1),
        "compressed_skipped": skipped[:5],
        "zram_ratio": round(swap.ratio, 2) if swap else None,
        "zram_ram_used_mib": round(swap.stored_bytes / MiB) if swap else None,
        "compress_cpu_ms_per_app_median": round(1000 * statistics.median(cpu), 1),
        "compress_wall_ms_per_app_median": round(1000 * statistics.median(wall), 1),
        "compress_wall_ms_per_app_max": round(1000 * max(wall), 1),
        "compressed_awake_idle_cpu_per_app_percent_of_core": round(100 * cpu_share, 1),
        "warm_request_ms_median": round(1000 * statistics.median(warm), 1),
        "warm_request_ms_p95": round(1000 * p95(warm), 1),
        "first_request_after_compression_ms_median": round(1000 * statistics.median(first), 1),
        "first_request_after_compression_ms_p95": round(1000 * p95(first), 1),
    }


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
    ap.add_argument(
        "--no-compress", action="store_true", help="skip the compressed tier's measures"
    )
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
            compressed: dict[str, object] = {}
            if not args.no_compress and zram.active() is not None:
                today = statistics.median(per_app)
                outside = max(0.0, grown / len(states) - today)
                compressed = compressed_tier(backend, states, args, before, today, outside)
            elif not args.no_compress:
                say("no zram swap on this node: the compressed tier is not measured")
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
                **compressed,
            }
            if compressed:
                cost, squeezed = (
                    compressed["today_app_cost_mib"],
                    compressed["compressed_app_cost_mib"],
                )
                assert isinstance(cost, float) and isinstance(squeezed, float)
                result["idle_apps_per_gib_today"] = round(1024 / cost, 1)
                result["idle_apps_per_gib_compressed"] = round(1024 / squeezed, 1)
                result["compressed_over_today"] = round(cost / squeezed, 2)
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
