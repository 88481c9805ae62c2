"""Benchmark: how fast a sleeping Gradio Space wakes, and what an idle one costs.

Runs against a running node (`make up`, or any SPACEPORT_URL) like a user would: it creates a
Space, `git push`es examples/gradio-hello, waits for RUNNING, then measures
- idle memory of the app's container (what `docker stats` shows: usage minus page cache),
- light sleep (container frozen): time from a visitor's first request to the app's answer,
- full sleep (container stopped): the same, which includes starting a new container,
and prints one JSON object. The Space is deleted at the end.

    .venv/bin/python bench/bench_sleep.py --url http://localhost:8080 \
        --token "$(cat .spaceport/admin.token)"
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import docker
import httpx

ROOT = Path(__file__).resolve().parents[1]
HOST_MEMORY_GIB = 24
GOAL_APPS = 150


class Bench:
    def __init__(self, url: str, token: str, apps_domain: str) -> None:
        self.url, self.token, self.domain = url.rstrip("/"), token, apps_domain
        self.api = httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {token}"}, timeout=60
        )
        self.port = urlparse(self.url).port or 80

    def runtime(self, space_id: str) -> dict[str, Any]:
        return dict(self.api.get(f"/api/spaces/{space_id}/runtime").json())

    def wait_stage(self, space_id: str, stage: str, timeout: float = 600) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.runtime(space_id)["stage"] == stage:
                return
            time.sleep(0.2)
        raise SystemExit(f"{space_id} did not reach {stage}: {self.runtime(space_id)}")

    def visit(self, space_id: str) -> httpx.Response:
        owner, name = space_id.split("/")
        label = f"{owner}-{name}".lower().replace(".", "-").replace("_", "-")
        host = f"{label}.{self.domain}:{self.port}"
        return httpx.get(f"http://127.0.0.1:{self.port}/", headers={"Host": host}, timeout=30)

    def first_byte_after_wake(self, space_id: str, timeout: float = 120) -> float:
        """Seconds from a visitor's first request (it wakes the Space) to the app's answer."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            try:
                r = self.visit(space_id)
                if r.status_code == 200 and "x-spaceport-status" not in r.headers:
                    return time.monotonic() - start
            except httpx.HTTPError:
                pass
            time.sleep(0.01)
        raise SystemExit(f"{space_id} did not answer within {timeout} s of being woken")

    def sleep(self, space_id: str, deep: bool) -> None:
        r = self.api.post(f"/api/v1/spaces/{space_id}/sleep", params={"deep": deep})
        r.raise_for_status()


def push(url: str, token: str, space_id: str, src: Path) -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-push-"))
    try:
        shutil.copytree(src, work / "app")
        env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}
        ident = ["-c", "user.name=bench", "-c", "user.email=bench@example.invalid"]
        for argv in (
            ["git", "init", "-q", "-b", "main"],
            ["git", "add", "-A"],
            ["git", *ident, "commit", "-q", "-m", "bench"],
        ):
            subprocess.run(argv, cwd=work / "app", env=env, check=True, capture_output=True)
        scheme, rest = url.split("://", 1)
        remote = f"{scheme}://bench:{token}@{rest}/spaces/{space_id}"
        subprocess.run(
            ["git", "push", "-q", "-f", remote, "main:main"],
            cwd=work / "app",
            env=env,
            check=True,
            capture_output=True,
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


def idle_memory_mib(space_id: str) -> float:
    """Like `docker stats`: the cgroup's usage minus inactive page cache."""
    client = docker.from_env()
    found = client.containers.list(filters={"label": f"org.spaceport.space={space_id}"})
    # Not the Space's standby container (lifecycle/standby.py), if it has one yet: it waits at
    # a low CPU weight (STANDBY_CPU_SHARES) until it takes a version (labels cannot say so).
    [container] = [c for c in found if c.attrs["HostConfig"].get("CpuShares") != 64]
    stats = container.stats(stream=False)["memory_stats"]
    cache = stats.get("stats", {}).get("inactive_file", 0)
    return float((stats["usage"] - cache) / 1024**2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("SPACEPORT_URL", "http://localhost:8080"))
    parser.add_argument("--token", default=os.environ.get("SPACEPORT_TOKEN"))
    parser.add_argument("--apps-domain", default="localhost")
    parser.add_argument("--app", type=Path, default=ROOT / "examples" / "gradio-hello")
    parser.add_argument("--light", type=int, default=5, help="light-sleep wakes to time")
    parser.add_argument("--full", type=int, default=3, help="full-sleep wakes to time")
    args = parser.parse_args()
    token = args.token or (ROOT / ".spaceport" / "admin.token").read_text().strip()
    bench = Bench(args.url, token, args.apps_domain)
    name = f"bench-sleep-{uuid.uuid4().hex[:6]}"
    r = bench.api.post("/api/repos/create", json={"type": "space", "name": name, "sdk": "gradio"})
    r.raise_for_status()
    space_id = r.json()["name"]
    try:
        push(args.url, token, space_id, args.app)
        bench.wait_stage(space_id, "RUNNING")
        bench.first_byte_after_wake(space_id)  # warm: the app has served once
        time.sleep(10)  # idle
        memory = idle_memory_mib(space_id)
        light, full = [], []
        for _ in range(args.light):
            bench.sleep(space_id, deep=False)
            time.sleep(1)
            light.append(bench.first_byte_after_wake(space_id))
            bench.wait_stage(space_id, "RUNNING")
        for _ in range(args.full):
            bench.sleep(space_id, deep=True)
            bench.wait_stage(space_id, "SLEEPING", timeout=60)  # its container has stopped
            time.sleep(1)
            full.append(bench.first_byte_after_wake(space_id))
            bench.wait_stage(space_id, "RUNNING")
        print(
            json.dumps(
                {
                    "space": space_id,
                    "idle_memory_mib": round(memory, 1),
                    "apps_per_host_memory": int(HOST_MEMORY_GIB * 1024 // memory),
                    "goal_apps": GOAL_APPS,
                    "light_wake_s": {
                        "median": round(statistics.median(light), 3),
                        "max": round(max(light), 3),
                        "all": [round(x, 3) for x in light],
                    },
                    "full_wake_s": {
                        "median": round(statistics.median(full), 3),
                        "max": round(max(full), 3),
                        "all": [round(x, 3) for x in full],
                    },
                },
                indent=2,
            )
        )
    finally:
        bench.api.request("DELETE", "/api/repos/delete", json={"type": "space", "name": name})


if __name__ == "__main__":
    main()
