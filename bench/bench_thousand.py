"""A thousand Spaces on one node (issue #20, target 2), measured on a real node in one run.

    PYTHONPATH=platform:builder .venv/bin/python bench/bench_thousand.py [--spaces 1000]

A node of its own (bench_build.node: API, worker, nginx, Redis, the real Docker engine) with
the density settings: idle Spaces deep-sleep after `--sleep-s` (SPACEPORT_DEFAULT_SLEEP_S),
the node pool holds `--pool-mib` of containers that imported an SDK, code-push standbys are
off (no code pushes here; each would hold a second container per awake Space).

1. `--awake` Spaces (20) are pushed with git, half examples/gradio-hello and half
   examples/streamlit-hello: built, deployed and started by the platform. Visitors keep them
   awake (`--rate` requests a second through the proxy) for the rest of the run.
2. The other Spaces (980) are made as a deep sleep leaves a Space: each is created through the
   API (`POST /api/repos/create`: its row and git repo), then given the commit, build and
   image of the first Gradio or Streamlit Space (two dependency sets, one image each) and a
   deployment whose container the platform's own spec makes (`lifecycle.spec.container_spec`,
   `RuntimeBackend.create`: env, limits, network, labels of its own) and which does not run;
   desired `sleeping`. Starting 980 apps once only to stop them again would cost this 2-core
   machine about half an hour of CPU and measure nothing a deep sleep does not.
3. With 1,000 Spaces on the node and the 20 under traffic: the control plane (`--rounds`
   rounds: a reconciler pass timed step by step, the route table pushed to nginx, the Hugging
   Face list, the console's list, the admin views, a metrics scrape), the node's memory and
   containers; then `--wakes` deep-sleep wakes of random sleeping Spaces, one every
   `--every` seconds, as a visitor sees them (first request through the proxy until the app's
   own page), noting which took a pool container; the node's own reconciler passes meanwhile
   (its duration histogram); then a storm: `--storm` Spaces visited at the same moment, more
   than the pool holds; at the end, how many woken Spaces went back to deep sleep.

Prints one JSON object (docs/benchmarks.md, "A thousand Spaces on one node").
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import statistics
import sys
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import docker
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_build import BenchNode, compiled_ready, node, pool_waiting, push, say, wait
from bench_controlplane import every_page, ok_get
from bench_wake import Traffic, Wakes, summary

ROOT = Path(__file__).resolve().parents[1]
SDKS = ("gradio", "streamlit")
PASS_METRIC = "spaceport_reconcile_duration_seconds"


def mem_available_mib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no MemAvailable in /proc/meminfo")


class MemoryWatch:
    """The node's lowest MemAvailable while it runs (sampled every second)."""

    def __init__(self) -> None:
        self.lowest = mem_available_mib()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            self.lowest = min(self.lowest, mem_available_mib())

    @contextmanager
    def running(self) -> Any:
        self._thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            self._thread.join()


def create_spaces(bench: BenchNode, n: int, prefix: str) -> list[tuple[str, str]]:
    """`n` Spaces created through the API, Gradio and Streamlit in turn: (space id, sdk)."""
    made = []
    with bench.api() as api:
        for i in range(n):
            sdk = SDKS[i % 2]
            body = {"type": "space", "name": f"{prefix}{i:04d}", "sdk": sdk}
            r = api.post("/api/repos/create", json=body)
            r.raise_for_status()
            made.append((str(r.json()["name"]), sdk))
            if i % 100 == 99:
                say(f"created {i + 1} Spaces")
    return made


def push_awake(bench: BenchNode, n: int) -> list[tuple[str, str]]:
    """`n` Spaces pushed with git (Gradio and Streamlit in turn), RUNNING: (space id, sdk)."""
    made = create_spaces(bench, n, "bench-awake-")
    for space_id, sdk in made:
        push(bench, ROOT / "examples" / f"{sdk}-hello", space_id)
    for space_id, _ in made:
        Wakes(bench, space_id, "static").wait_stage("RUNNING", timeout=900)
    return made


def seed_sleeping(bench: BenchNode, templates: dict[str, str], n: int) -> list[tuple[str, str]]:
    """`n` Spaces made as a deep sleep leaves one (module docstring, step 2)."""
    from sqlalchemy import select

    from spaceport.db.models import Build, Deployment, Space, utcnow
    from spaceport.db.queries import active_deployment
    from spaceport.db.session import session_scope
    from spaceport.engine import make_backend
    from spaceport.git.repos import repo_path
    from spaceport.lifecycle.hardware import resolve_flavor
    from spaceport.lifecycle.spec import container_spec
    from spaceport.lifecycle.standby import APP_DIR
    from spaceport.stages import BuildStatus, DeploymentStatus, Stage

    settings, backend = bench.settings, make_backend(bench.settings)
    source: dict[str, dict[str, Any]] = {}
    with session_scope() as session:
        for sdk, space_id in templates.items():
            owner, name = space_id.split("/")
            space = session.scalars(
                select(Space).where(Space.owner == owner, Space.name == name)
            ).one()
            dep = active_deployment(session, space.id)
            assert dep is not None and dep.build_id is not None
            build = session.get(Build, dep.build_id)
            assert build is not None
            source[sdk] = {
                "repo": repo_path(settings, owner, name),
                "sha": space.head_sha,
                "card": dict(space.card_data or {}),
                "image": dep.image,
                "report": dict(build.cache_report or {}),
            }
    made = create_spaces(bench, n, "bench-")
    flavor = resolve_flavor(settings, settings.default_hardware)
    now = utcnow()
    for i, (space_id, sdk) in enumerate(made):
        src = source[sdk]
        owner, name = space_id.split("/")
        dest = repo_path(settings, owner, name)
        shutil.rmtree(dest)
        shutil.copytree(src["repo"], dest)
        with session_scope() as session:
            space = session.scalars(
                select(Space).where(Space.owner == owner, Space.name == name)
            ).one()
            build = Build(
                space_id=space.id,
                commit_sha=src["sha"],
                status=BuildStatus.SUCCEEDED.value,
                image=src["image"],
                cache_report=src["report"],
                log="(seeded by bench_thousand.py)\n",
                finished_at=now,
            )
            session.add(build)
            session.flush()
            dep = Deployment(
                space_id=space.id,
                build_id=build.id,
                image=src["image"],
                commit_sha=src["sha"],
                status=DeploymentStatus.ACTIVE.value,
                ready_at=now,
            )
            session.add(dep)
            session.flush()
            spec = container_spec(
                session, settings, space, dep.id, src["image"], src["sha"], flavor
            )
            dep.container_id = backend.create(spec).id
            space.head_sha, space.card_data = src["sha"], src["card"]
            space.hardware_current = settings.default_hardware
            space.desired, space.stage = "sleeping", Stage.SLEEPING.value
            space.last_request_at = now
        if i % 100 == 99:
            say(f"seeded {i + 1} deep-sleeping Spaces")
    for src in source.values():  # what the deep sleep of each does (node_pool.prepare_wake):
        backend.node_ops().keep_image_dir(src["image"], APP_DIR)  # once per image they share
    return made


def control_plane(bench: BenchNode, rounds: int) -> dict[str, Any]:
    """The control plane's operations at this node's size, `rounds` times each, interleaved;
    the reconciler pass also split by step."""
    from spaceport import reconciler
    from spaceport.auth.sessions import SESSION_COOKIE, start_session
    from spaceport.db.models import User
    from spaceport.db.session import session_scope
    from spaceport.lifecycle.proxy_routes import sync_routes

    with session_scope() as session:
        admin = session.query(User).filter_by(name="admin").one()
        cookie = start_session(session, admin, "write")
    api = bench.api()
    console = httpx.Client(base_url=bench.url, cookies={SESSION_COOKIE: cookie}, timeout=60)
    steps: dict[str, list[float]] = {}
    original = reconciler._step

    def timed_step(name: str, fn: Callable[[], object]) -> None:
        t = time.perf_counter()
        original(name, fn)
        steps.setdefault(name, []).append((time.perf_counter() - t) * 1000)

    def reconcile_pass() -> None:
        reconciler._step = timed_step  # type: ignore[assignment]
        try:
            reconciler.reconcile_once(bench.settings)
        finally:
            reconciler._step = original  # type: ignore[assignment]

    ops: dict[str, Callable[[], object]] = {
        "reconcile_pass": reconcile_pass,
        "route_update": lambda: sync_routes(bench.settings),
        "api_spaces_page": ok_get(api, "/api/spaces?limit=100"),
        "api_spaces_all": lambda: every_page(api),
        "api_v1_spaces_page": ok_get(api, "/api/v1/spaces?limit=100"),
        "console_list": ok_get(console, "/"),
        "admin_overview": ok_get(api, "/api/v1/admin/overview"),
        "console_admin": ok_get(console, "/admin"),
        "metrics_scrape": ok_get(api, "/api/v1/metrics"),
    }
    times: dict[str, list[float]] = {k: [] for k in ops}
    for _ in range(rounds):
        for name, op in ops.items():
            t = time.perf_counter()
            op()
            times[name].append((time.perf_counter() - t) * 1000)
    out: dict[str, Any] = {k: ms(v) for k, v in times.items()}
    slow = sorted(steps.items(), key=lambda kv: -statistics.median(kv[1]))[:8]
    out["reconcile_steps"] = {k: ms(v) for k, v in slow}
    return out


def ms(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"median_ms": round(statistics.median(values), 1), "p95_ms": round(p95, 1)}


def pass_times(bench: BenchNode) -> dict[str, list[float]]:
    """[sum of seconds, count] of the node's own reconciler passes ("pass") and of each of
    their steps, from its metrics."""
    with bench.api() as api:
        text = api.get("/api/v1/metrics").text
    out: dict[str, list[float]] = {}
    pattern = (
        r'^spaceport_reconcile_(step_)?duration_seconds_(sum|count)(?:\{step="([^"]+)"\})? (\S+)$'
    )
    for m in re.finditer(pattern, text, re.M):
        key = m.group(3) if m.group(1) else "pass"
        out.setdefault(key, [0.0, 0.0])[m.group(2) == "count"] = float(m.group(4))
    return out


def pass_means(before: dict[str, list[float]], after: dict[str, list[float]]) -> dict[str, Any]:
    """Mean milliseconds of the passes (and their slowest steps) between two readings."""
    means = {}
    for key, (total, count) in after.items():
        t0, c0 = before.get(key, [0.0, 0.0])
        if count > c0:
            means[key] = round((total - t0) / (count - c0) * 1000, 1)
    passes = int(after.get("pass", [0, 0])[1] - before.get("pass", [0, 0])[1])
    steps = sorted(((k, v) for k, v in means.items() if k != "pass"), key=lambda kv: -kv[1])
    return {"passes": passes, "mean_ms": means.get("pass"), "slowest_steps_ms": dict(steps[:6])}


def wakes(
    bench: BenchNode, sleeping: list[tuple[str, str]], n: int, every: float
) -> dict[str, Any]:
    """`n` wakes of random sleeping Spaces, one every `every` seconds, as visitors see them."""
    picked = random.Random(20).sample(sleeping, n)
    times: dict[str, list[float]] = {sdk: [] for sdk in SDKS}
    pooled: dict[str, int] = {sdk: 0 for sdk in SDKS}
    status_pages = 0  # wakes whose visitor saw the status page (not held long enough)
    for i, (space_id, sdk) in enumerate(picked):
        slot = time.monotonic()
        waiting = pool_waiting()
        visitor = Wakes(bench, space_id, sdk)
        _, took = visitor.visit_until_served()
        times[sdk].append(took)
        status_pages += visitor.status_pages > 0
        taken = visitor.serving_id()
        pooled[sdk] += any(c.startswith(taken) for c in waiting)
        visitor.api.close()
        say(f"wake {i + 1}/{n} {space_id} ({sdk}): {took:.2f} s")
        time.sleep(max(0.0, every - (time.monotonic() - slot)))
    return {
        "woken": [s for s, _ in picked],
        **{f"{sdk}_s": summary(times[sdk]) for sdk in SDKS if times[sdk]},
        **{f"{sdk}_into_pool": f"{pooled[sdk]} of {len(times[sdk])}" for sdk in SDKS},
        "saw_the_status_page": f"{status_pages} of {n}",
    }


def storm(bench: BenchNode, sleeping: list[tuple[str, str]], n: int) -> dict[str, Any]:
    """`n` sleeping Spaces visited at the same moment (more than the pool holds): how long
    each visitor waits, and how many took a pool container."""
    picked = random.Random(7).sample(sleeping, n)
    waiting = pool_waiting()
    times: dict[str, list[float]] = {sdk: [] for sdk in SDKS}
    taken: list[str] = []
    go = threading.Barrier(n)

    def visit(space_id: str, sdk: str) -> None:
        visitor = Wakes(bench, space_id, sdk)
        go.wait()
        times[sdk].append(visitor.visit_until_served(timeout=300)[1])
        taken.append(visitor.serving_id())
        visitor.api.close()

    threads = [threading.Thread(target=visit, args=pick) for pick in picked]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    pooled = sum(any(c.startswith(t) for c in waiting) for t in taken)
    return {
        "visitors": n,
        "pool_waiting_before": len(waiting),
        "into_pool": pooled,
        "woken": [s for s, _ in picked],
        **{f"{sdk}_s": summary(times[sdk]) for sdk in SDKS if times[sdk]},
    }


def stages(bench: BenchNode, space_ids: list[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    with bench.api() as api:
        for space_id in space_ids:
            stage = str(api.get(f"/api/spaces/{space_id}/runtime").json().get("stage"))
            out[stage] = out.get(stage, 0) + 1
    return out


def node_containers(bench: BenchNode) -> dict[str, int]:
    label = f"org.spaceport.instance={bench.settings.instance}"
    rows = docker.from_env().api.containers(all=True, filters={"label": label})
    out: dict[str, int] = {}
    for row in rows:
        out[row["State"]] = out.get(row["State"], 0) + 1
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, default=18760)
    p.add_argument("--redis-db", type=int, default=13)
    p.add_argument("--spaces", type=int, default=1000)
    p.add_argument("--awake", type=int, default=20)
    p.add_argument("--rate", type=float, default=40.0, help="requests a second to the awake")
    p.add_argument("--pool-mib", type=int, default=1024)
    p.add_argument("--sleep-s", type=int, default=180, help="SPACEPORT_DEFAULT_SLEEP_S")
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--wakes", type=int, default=40)
    p.add_argument("--every", type=float, default=10.0, help="seconds between wakes")
    p.add_argument("--storm", type=int, default=16, help="then this many wakes at once")
    p.add_argument("--no-resleep", action="store_true", help="skip the wait for sleep again")
    p.add_argument("--keep-logs", type=Path, help="copy the node's logs here at the end")
    args = p.parse_args()
    result: dict[str, Any] = {"memory_available_mib_before": round(mem_available_mib())}
    env = {
        "SPACEPORT_DEFAULT_SLEEP_S": str(args.sleep_s),
        "SPACEPORT_POOL_BUDGET_MIB": str(args.pool_mib),
        "SPACEPORT_STANDBY_TTL_S": "0",
        "SPACEPORT_WAKE_STANDBY_BUDGET_MIB": "0",
    }
    with node(args.port, args.redis_db, env) as bench, MemoryWatch().running() as memory:
        try:
            run(args, bench, memory, result)
        finally:
            if args.keep_logs:
                shutil.copytree(bench.settings.logs_dir, args.keep_logs, dirs_exist_ok=True)
    print(json.dumps(result, indent=2))


def run(args: argparse.Namespace, bench: BenchNode, memory: MemoryWatch, result: dict) -> None:
    """The whole run on the node (main's), its findings into `result`."""
    say(f"pushing {args.awake} Spaces")
    awake = push_awake(bench, args.awake)
    templates = {sdk: next(s for s, k in awake if k == sdk) for sdk in SDKS}
    for space_id in templates.values():
        wait(lambda s=space_id: compiled_ready(bench, s), 600, "the compiled stage")
    owner_hosts = [s.split("/") for s, _ in awake]
    hosts = [f"{bench.settings.app_host(o, n)}:{bench.port}" for o, n in owner_hosts]
    traffic = Traffic(bench, hosts, args.rate)
    traffic.start()
    try:
        say(f"seeding {args.spaces - args.awake} deep-sleeping Spaces")
        t = time.monotonic()
        sleeping = seed_sleeping(bench, templates, args.spaces - args.awake)
        result["seed_s"] = round(time.monotonic() - t)
        full = args.pool_mib // 128
        wait(lambda: len(pool_waiting()) >= full, 900, "the pool's containers")
        result["containers_at_1000"] = node_containers(bench)
        result["memory_available_mib_at_1000"] = round(mem_available_mib())
        if args.rounds:
            say("control plane")
            result["control_plane"] = control_plane(bench, args.rounds)
        say("wakes")
        before = pass_times(bench)
        result["wakes"] = wakes(bench, sleeping, args.wakes, args.every)
        result["node_reconciler_during_wakes"] = pass_means(before, pass_times(bench))
        if args.storm:
            say(f"a storm of {args.storm} wakes at once, once the pool is full again")
            wait(lambda: len(pool_waiting()) >= full, 600, "the pool to refill")
            woken = set(result["wakes"]["woken"])
            rest = [pick for pick in sleeping if pick[0] not in woken]
            result["storm"] = storm(bench, rest, args.storm)
        result["traffic"] = traffic.report()
    finally:
        traffic.stop()
    result["memory_available_mib_lowest"] = round(memory.lowest)
    woken = result["wakes"]["woken"] + result.get("storm", {}).get("woken", [])
    if not args.no_resleep:
        say(f"waiting {args.sleep_s} s and more: the woken Spaces deep-sleep again")
        time.sleep(args.sleep_s + 3 * bench.settings.reconcile_interval_s)
        result["woken_after_sleep_s"] = stages(bench, woken)
    result["containers_at_end"] = node_containers(bench)
    result["memory_available_mib_at_end"] = round(mem_available_mib())


if __name__ == "__main__":
    main()
