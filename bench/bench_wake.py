"""Benchmark: what a deep-sleep wake of a Gradio or Streamlit Space spends its time on, and the
same wake with and without a wake standby (lifecycle/wake_standby.py), side by side in one run.

Starts a node of its own (as bench_build.py does); for each SDK pushes examples/<sdk>-hello,
waits for RUNNING, then times deep-sleep wakes as a visitor sees them (first request, which
wakes the Space, until the app itself answers through the proxy):
- "kept": today's wake, the stopped container started again (`wake_standby_budget_mib` = 0);
- "standby": the node keeps a wake standby for the Space (the API restarted with a budget),
  and the benchmark waits until it has imported the SDK before it wakes the Space.
For every "kept" wake it splits the time with the engine's and the app's own clocks: the
visitor's first request -> the container's start (`State.StartedAt`: the status page's wake,
the lock, the engine's start) -> the app's line that it listens (interpreter, imports,
app construction, server up) -> the first answer through the proxy (readiness poll, route);
and it times the SDK's import alone in the woken container (`docker exec`), which splits the
app's part. It also reads a waiting standby's memory. Prints one JSON object.

    PYTHONPATH=platform:builder .venv/bin/python bench/bench_wake.py --wakes 5
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import sys
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import docker
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_build import BenchNode, node, pool_waiting, push, restart

ROOT = Path(__file__).resolve().parents[1]
# How often the status page asks again (templates/status.html): a browser left on it does.
STATUS_PAGE_POLL_S = 1.0
# What the app prints once it listens.
RUNNING_LINE = {
    "gradio": "Running on local URL",
    "streamlit": "You can now view your Streamlit app",
}


def stamp(text: str) -> float:
    """Docker's RFC 3339 time (nanoseconds) as epoch seconds."""
    text = text.strip().replace("Z", "+00:00")
    head, _, rest = text.partition(".")
    frac, plus, zone = rest.partition("+")
    return datetime.fromisoformat(f"{head}.{frac[:6]}{plus}{zone}").timestamp()


class Wakes:
    def __init__(self, bench: BenchNode, space_id: str, sdk: str) -> None:
        self.bench, self.space_id, self.sdk = bench, space_id, sdk
        self.api = bench.api()
        owner, name = space_id.split("/")
        self.host = f"{bench.settings.app_host(owner, name)}:{bench.port}"
        self.client = docker.from_env()
        self.status_pages = 0  # answers of the platform's status page the visitor got

    @classmethod
    def deployed(cls, bench: BenchNode, sdk: str) -> Wakes:
        """A new Space of examples/<sdk>-hello, RUNNING and answering."""
        r = bench.api().post(
            "/api/repos/create", json={"type": "space", "name": f"wake-{sdk}", "sdk": sdk}
        )
        r.raise_for_status()
        push(bench, ROOT / "examples" / f"{sdk}-hello", r.json()["name"])
        wakes = cls(bench, r.json()["name"], sdk)
        wakes.wait_stage("RUNNING", timeout=900)
        wakes.visit_until_served()
        return wakes

    def delete(self) -> None:
        name = self.space_id.split("/")[1]
        body = {"type": "space", "name": name}
        self.api.request("DELETE", "/api/repos/delete", json=body).raise_for_status()

    def wait_standby(self, timeout: float = 180) -> Any:
        """The Space's wake standby, once it imported the SDK."""
        deadline = time.monotonic() + timeout
        while (waiting := self.standby()) is None:
            if time.monotonic() > deadline:
                raise SystemExit("no wake standby was made")
            time.sleep(0.5)
        return waiting

    def stage(self) -> str:
        return str(self.api.get(f"/api/spaces/{self.space_id}/runtime").json().get("stage"))

    def wait_stage(self, stage: str, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while self.stage() != stage:
            if time.monotonic() > deadline:
                raise SystemExit(f"{self.space_id} did not reach {stage}")
            time.sleep(0.2)

    def containers(self) -> list[Any]:
        label = f"org.spaceport.space={self.space_id}"
        return list(self.client.containers.list(filters={"label": label}))

    def serving_id(self) -> str:
        """The short id of the container the Space runs, as its API says (a pool container
        carries no Space label)."""
        r = self.api.get(f"/api/v1/spaces/{self.space_id}")
        r.raise_for_status()
        return str((r.json().get("container") or {}).get("id"))

    def serving(self) -> Any:
        [c] = [c for c in self.containers() if c.attrs["HostConfig"].get("CpuShares") != 64]
        return c

    def standby(self) -> Any | None:
        """The Space's wake standby once its interpreter imported the SDK."""
        for c in self.containers():
            if c.attrs["HostConfig"].get("CpuShares") == 64 and b"waiting for the app" in c.logs():
                return c
        return None

    def deep_sleep(self) -> None:
        r = self.api.post(f"/api/v1/spaces/{self.space_id}/sleep", params={"deep": True})
        r.raise_for_status()
        self.wait_stage("SLEEPING", timeout=60)
        deadline = time.monotonic() + 60
        while any(c.attrs["HostConfig"].get("CpuShares") != 64 for c in self.containers()):
            if time.monotonic() > deadline:
                raise SystemExit("the container did not stop")
            time.sleep(0.2)

    def visit_until_served(self, timeout: float = 120) -> tuple[float, float]:
        """(epoch of the first request, seconds until the app's page), as a browser sees it:
        it follows the redirect a held first request gets once the Space serves, and when it
        gets the status page instead it asks again a second later (as that page polls)."""
        t0, start = time.time(), time.monotonic()
        while time.monotonic() - start < timeout:
            try:
                r = httpx.get(
                    f"http://127.0.0.1:{self.bench.port}/",
                    headers={"Host": self.host},
                    timeout=30,
                    follow_redirects=True,
                )
                if r.status_code == 200 and "x-spaceport-status" not in r.headers:
                    return t0, time.monotonic() - start
                self.status_pages += 1
            except httpx.HTTPError:
                pass
            time.sleep(STATUS_PAGE_POLL_S)
        raise SystemExit("the app did not answer")

    def split(self, t0: float, total: float) -> dict[str, float]:
        """The kept container's wake, split by its own clocks (see the module docstring)."""
        c = self.serving()
        c.reload()
        started = stamp(c.attrs["State"]["StartedAt"])
        logs = c.logs(timestamps=True, since=int(started) - 1).decode(errors="replace")
        lines = [ln for ln in logs.splitlines() if RUNNING_LINE[self.sdk] in ln]
        running = stamp(lines[-1].split(" ", 1)[0]) if lines else float("nan")
        code = f"import time; t = time.perf_counter(); import {self.sdk}; "
        code += "print(time.perf_counter() - t)"
        out = c.exec_run(["python", "-c", code]).output.decode().strip().splitlines()
        return {
            "total": total,
            "request_to_container_start": started - t0,
            "container_start_to_app_listening": running - started,
            "import_sdk_alone": float(out[-1]) if out else float("nan"),
            "app_listening_to_first_answer": t0 + total - running,
        }


def restart_api(bench: BenchNode, budget_mib: int, pool_mib: int = 0) -> None:
    """The API (whose reconciler keeps wake standbys and the pool, and whose jobs wake Spaces)
    with these budgets."""
    env = {
        "SPACEPORT_WAKE_STANDBY_BUDGET_MIB": str(budget_mib),
        "SPACEPORT_POOL_BUDGET_MIB": str(pool_mib),
    }
    restart(bench, env, ("api",))


def wait_pool(timeout: float = 300) -> set[str]:
    """The node pool's containers once at least one imported the SDK and waits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := pool_waiting():
            return found
        time.sleep(0.5)
    raise SystemExit("the node pool made no container")


def pool_wakes(
    bench: BenchNode, sdk: str, wakes_n: int, pool_mib: int, hosts: list[str], rate: float
) -> dict[str, Any]:
    """Deep-sleep wakes of a Space with no wake standby: the kept container started again
    (no pool), then into a node pool container, quiet and (with `hosts`) while they are busy,
    in one run (target 1 of the density issue for Spaces outside the wake standby budget)."""
    restart_api(bench, 0)
    wakes = Wakes.deployed(bench, sdk)
    kept: list[float] = []
    for _ in range(wakes_n):
        wakes.deep_sleep()
        time.sleep(1)
        kept.append(wakes.visit_until_served()[1])
        wakes.wait_stage("RUNNING")
    restart_api(bench, 0, pool_mib)
    quiet: list[float] = []
    busy: list[float] = []
    traffic = Traffic(bench, hosts, rate) if hosts else None
    for i in range(2 * wakes_n if traffic else wakes_n):
        wakes.deep_sleep()
        waiting = wait_pool()
        time.sleep(1)
        if traffic is not None and i % 2:
            traffic.start()
            time.sleep(2)  # the other Spaces are busy before the visitor comes
            try:
                busy.append(wakes.visit_until_served()[1])
            finally:
                traffic.stop()
        else:
            quiet.append(wakes.visit_until_served()[1])
        taken = wakes.serving_id()
        assert any(c.startswith(taken) for c in waiting), "the wake did not take a pool container"
        wakes.wait_stage("RUNNING")
    wakes.delete()
    restart_api(bench, 0)
    return {
        "space": wakes.space_id,
        "kept_wake_s": summary(kept),
        "pool_wake_quiet_s": summary(quiet),
        **({"pool_wake_busy_s": summary(busy), "busy_spaces": len(hosts)} if traffic else {}),
        "ratio_median": round(statistics.median(kept) / statistics.median(quiet), 2),
        **({"traffic": traffic.report()} if traffic else {}),
    }


def summary(values: list[float]) -> dict[str, Any]:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {
        "median": round(statistics.median(values), 3),
        "p95": round(p95, 3),
        "all": [round(v, 3) for v in values],
    }


def measure(bench: BenchNode, sdk: str, wakes_n: int, budget_mib: int) -> dict[str, Any]:
    """Kept-container wakes (no wake standbys), then wakes into the wake standby."""
    restart_api(bench, 0)
    wakes = Wakes.deployed(bench, sdk)
    kept: list[dict[str, float]] = []
    for _ in range(wakes_n):
        wakes.deep_sleep()
        time.sleep(1)
        t0, total = wakes.visit_until_served()
        kept.append(wakes.split(t0, total))
        wakes.wait_stage("RUNNING")
    restart_api(bench, budget_mib)
    standby: list[float] = []
    memory: list[float] = []
    for _ in range(wakes_n):
        wakes.deep_sleep()
        waiting = wakes.wait_standby()
        stats = waiting.stats(stream=False)["memory_stats"]
        memory.append((stats["usage"] - stats.get("stats", {}).get("inactive_file", 0)) / 1024**2)
        time.sleep(1)
        _, total = wakes.visit_until_served()
        assert wakes.serving().id == waiting.id, "the wake did not take the standby"
        standby.append(total)
        wakes.wait_stage("RUNNING")
    wakes.delete()  # out of the next SDK's way
    parts = {k: summary([w[k] for w in kept]) for k in kept[0]}
    return {
        "space": wakes.space_id,
        "kept_wake_s": parts,
        "standby_wake_s": summary(standby),
        "ratio_median": round(parts["total"]["median"] / statistics.median(standby), 2),
        "standby_memory_mib": summary(memory),
    }


class Traffic:
    """Visitors of `hosts` through the proxy at about `rate` requests a second in all, from a
    few threads, while it runs (`start`/`stop`, again and again): their latencies and failures
    add up in `report`."""

    def __init__(self, bench: BenchNode, hosts: list[str], rate: float, threads: int = 4) -> None:
        self.bench, self.hosts, self.rate, self.threads = bench, hosts, rate, threads
        self.latencies: list[float] = []
        self.failures = 0
        self._stop = threading.Event()
        self._workers: list[threading.Thread] = []

    def _visit(self, index: int) -> None:
        gap = self.threads / self.rate
        url = f"http://127.0.0.1:{self.bench.port}/"
        with httpx.Client(timeout=30) as client:
            n = index
            while not self._stop.is_set():
                host = self.hosts[n % len(self.hosts)]
                n += self.threads
                t = time.monotonic()
                try:
                    ok = client.get(url, headers={"Host": host}).status_code == 200
                except httpx.HTTPError:
                    ok = False
                took = time.monotonic() - t
                if ok:
                    self.latencies.append(took)
                else:
                    self.failures += 1
                self._stop.wait(max(0.0, gap - took))

    def start(self) -> None:
        self._stop.clear()
        self._workers = [
            threading.Thread(target=self._visit, args=(i,)) for i in range(self.threads)
        ]
        for w in self._workers:
            w.start()

    def stop(self) -> None:
        self._stop.set()
        for w in self._workers:
            w.join()

    def report(self) -> dict[str, Any]:
        ms = sorted(x * 1000 for x in self.latencies)
        pick = (lambda q: round(ms[min(len(ms) - 1, int(q * len(ms)))], 1)) if ms else None
        return {
            "requests": len(ms) + self.failures,
            "failures": self.failures,
            "median_ms": pick(0.5) if pick else None,
            "p95_ms": pick(0.95) if pick else None,
        }


def busy_spaces(bench: BenchNode, n: int) -> list[str]:
    """`n` static Spaces, RUNNING: the node's other tenants. Their hosts, for Traffic."""
    import shutil
    import tempfile

    api = bench.api()
    hosts, made = [], []
    for i in range(n):
        name = f"busy-{i}"
        r = api.post("/api/repos/create", json={"type": "space", "name": name, "sdk": "static"})
        r.raise_for_status()
        src = Path(tempfile.mkdtemp(prefix="spaceport-bench-busy-")) / name
        shutil.copytree(ROOT / "examples" / "static-site", src)
        push(bench, src, r.json()["name"])
        made.append(r.json()["name"])
        owner, space = r.json()["name"].split("/")
        hosts.append(f"{bench.settings.app_host(owner, space)}:{bench.port}")
    for space_id in made:
        Wakes(bench, space_id, "static").wait_stage("RUNNING", timeout=600)
    return hosts


def busy_wakes(
    bench: BenchNode, sdk: str, wakes_n: int, budget_mib: int, hosts: list[str], rate: float
) -> dict[str, Any]:
    """Wakes into the wake standby with the node quiet, then with `hosts` under traffic,
    alternating, in one run (target 1 of the density issue: while 20 other Spaces serve)."""
    restart_api(bench, budget_mib)
    wakes = Wakes.deployed(bench, sdk)
    quiet: list[float] = []
    busy: list[float] = []
    traffic = Traffic(bench, hosts, rate)
    for i in range(2 * wakes_n):
        wakes.deep_sleep()
        waiting = wakes.wait_standby()
        time.sleep(1)
        if i % 2:
            traffic.start()
            time.sleep(2)  # the other Spaces are busy before the visitor comes
            try:
                _, total = wakes.visit_until_served()
            finally:
                traffic.stop()
            busy.append(total)
        else:
            _, total = wakes.visit_until_served()
            quiet.append(total)
        assert wakes.serving().id == waiting.id, "the wake did not take the standby"
        wakes.wait_stage("RUNNING")
    wakes.delete()
    return {
        "space": wakes.space_id,
        "standby_wake_quiet_s": summary(quiet),
        "standby_wake_busy_s": summary(busy),
        "busy_spaces": len(hosts),
        "traffic": traffic.report(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=int(os.environ.get("BENCH_PORT", "18740")))
    parser.add_argument("--redis-db", type=int, default=int(os.environ.get("BENCH_REDIS_DB", "12")))
    parser.add_argument("--sdk", action="append", choices=sorted(RUNNING_LINE))
    parser.add_argument("--wakes", type=int, default=5, help="wakes of each kind")
    parser.add_argument("--budget-mib", type=int, default=1024)
    parser.add_argument(
        "--busy", type=int, default=0, help="N static Spaces under traffic: wakes quiet vs busy"
    )
    parser.add_argument("--rate", type=float, default=40.0, help="their requests a second")
    parser.add_argument(
        "--pool-mib", type=int, default=0, help="wakes into the node pool (this budget) vs kept"
    )
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # the node is stopped and cleaned
    env = {"SPACEPORT_WAKE_STANDBY_BUDGET_MIB": "0", "SPACEPORT_STANDBY_TTL_S": "0"}
    with node(args.port, args.redis_db, env) as bench:
        if args.pool_mib:
            hosts = busy_spaces(bench, args.busy) if args.busy else []
            pooled = {
                sdk: pool_wakes(bench, sdk, args.wakes, args.pool_mib, hosts, args.rate)
                for sdk in args.sdk or ["gradio", "streamlit"]
            }
            print(json.dumps(pooled, indent=2))
            return
        if args.busy:
            hosts = busy_spaces(bench, args.busy)
            busy = {
                sdk: busy_wakes(bench, sdk, args.wakes, args.budget_mib, hosts, args.rate)
                for sdk in args.sdk or ["gradio", "streamlit"]
            }
            print(json.dumps(busy, indent=2))
            return
        result = {
            sdk: measure(bench, sdk, args.wakes, args.budget_mib)
            for sdk in args.sdk or ["gradio", "streamlit"]
        }
        print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
