"""Benchmark: cluster mode against one machine, side by side in one run.

Starts two platforms on this machine, as a user would with `make up` and `make up-cluster`: a
single-node one (this machine's engine) and one in cluster mode on the dev Swarm
(`spaceport cluster up`, 3 nodes). Then measures
- push -> RUNNING of the same static app on each (the cluster pushes the image to the registry
  and a node pulls it: the ratio is what that costs), `--pushes` times each, interleaved;
- failover: a node running a Space is killed (`spaceport cluster stop-node`: engine killed,
  link cut) -> seconds until the Space answers again through the proxy from another node
  (the dev cluster's manager runs no apps: the node that dies is a worker), twice;
- spread: `--spread` static Spaces pushed to the cluster, how many land on each node and each
  node's memory in use by them;
- remote builds: push -> RUNNING on the cluster with the build taken by a build worker on
  another machine (`spaceport worker --builds-only` on node2's engine, its own data dir: it
  fetches the repository over git HTTP and pushes the image) vs by the control plane's own
  worker, `--pushes` times each, interleaved (each round only one of them consumes `build`);
and prints one JSON object (docs/benchmarks.md has a run). Needs root (the dev cluster).

    .venv/bin/python bench/bench_cluster.py --pushes 3 --spread 30
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import docker
import httpx

ROOT = Path(__file__).resolve().parents[1]
SPACEPORT = [sys.executable, "-m", "spaceport.cli.main"]


class Platform:
    """One running Spaceport, driven over HTTP and git like a user."""

    def __init__(self, name: str, port: int, db: int, extra: dict[str, str]) -> None:
        self.data = Path(tempfile.mkdtemp(prefix=f"bench-{name}-"))
        self.port, self.token = port, "sp_bench_" + uuid.uuid4().hex
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("SPACEPORT_")}
        self.env.update(
            {
                "SPACEPORT_DATA": str(self.data),
                "SPACEPORT_URL": f"http://localhost:{port}",
                "SPACEPORT_LISTEN": f":{port}",
                "SPACEPORT_API_PORT": str(port + 1),
                "SPACEPORT_REDIS_URL": f"redis://127.0.0.1:6379/{db}",
                "SPACEPORT_ADMIN_TOKEN": self.token,
                "SPACEPORT_RECONCILE_INTERVAL_S": "1",
                "SPACEPORT_STANDBY_TTL_S": "0",
                **extra,
            }
        )
        self.api = httpx.Client(
            base_url=f"http://127.0.0.1:{port}",
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=60,
        )

    def up(self) -> None:
        subprocess.run([*SPACEPORT, "up", "--no-examples"], env=self.env, check=True)

    def down(self) -> None:
        subprocess.run([*SPACEPORT, "down"], env=self.env, check=False, capture_output=True)

    def runtime(self, space_id: str) -> dict[str, Any]:
        return dict(self.api.get(f"/api/spaces/{space_id}/runtime").json())

    def visit(self, space_id: str) -> httpx.Response:
        owner, name = space_id.split("/")
        host = f"{owner}-{name}.localhost:{self.port}"
        return httpx.get(f"http://127.0.0.1:{self.port}/", headers={"Host": host}, timeout=5)

    def deploy(self, src: Path) -> tuple[str, float]:
        """Create a Space and push `src`; the Space and seconds from push to RUNNING."""
        name = f"b-{uuid.uuid4().hex[:8]}"
        r = self.api.post(
            "/api/repos/create", json={"type": "space", "name": name, "sdk": "static"}
        )
        r.raise_for_status()
        space_id = f"admin/{name}"
        work = Path(tempfile.mkdtemp())
        shutil.copytree(src, work / "app")
        git = ["git", "-c", "user.name=b", "-c", "user.email=b@example.invalid"]
        for argv in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "bench"]):
            subprocess.run([*git, *argv], cwd=work / "app", check=True)
        remote = f"http://admin:{self.token}@127.0.0.1:{self.port}/spaces/{space_id}"
        start = time.monotonic()
        subprocess.run(
            ["git", "push", "-q", remote, "main"], cwd=work / "app", check=True, capture_output=True
        )
        while self.runtime(space_id)["stage"] != "RUNNING":
            if time.monotonic() - start > 600:
                raise SystemExit(f"{space_id} not RUNNING: {self.runtime(space_id)}")
            time.sleep(0.1)
        return space_id, time.monotonic() - start


def static_app(marker: str) -> Path:
    app = Path(tempfile.mkdtemp()) / "app"
    shutil.copytree(ROOT / "examples" / "static-site", app)
    (app / "index.html").write_text(f"<!doctype html><p>{marker}</p>")
    return app


def failover(cluster: Platform, space_id: str, marker: str) -> dict[str, Any]:
    node = cluster.runtime(space_id)["node"]
    start = time.monotonic()
    subprocess.run([*SPACEPORT, "cluster", "stop-node", node], check=True, capture_output=True)
    try:
        while True:
            try:
                r = cluster.visit(space_id)
                if r.status_code == 200 and marker in r.text:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() - start > 180:
                raise SystemExit(f"{space_id} did not come back: {cluster.runtime(space_id)}")
            time.sleep(0.1)
        took = time.monotonic() - start
        moved_to = cluster.runtime(space_id).get("node")
    finally:
        subprocess.run([*SPACEPORT, "cluster", "start-node", node], check=True, capture_output=True)
    return {"killed": node, "moved_to": moved_to, "seconds": round(took, 2)}


class BuildWorker:
    """`spaceport worker --builds-only` on a dev node's engine, sharing no disk with `cluster`;
    `only(True)` makes it the only consumer of the build queue, `only(False)` the control
    plane's worker."""

    def __init__(self, cluster: Platform, engine: str) -> None:
        from celery import Celery

        data = Path(tempfile.mkdtemp(prefix="bench-build-worker-"))
        if (cluster.data / "secret.key").exists():
            shutil.copy(cluster.data / "secret.key", data / "secret.key")
        env = {k: v for k, v in cluster.env.items() if k != "SPACEPORT_REGISTRY_PUSH"}
        env.update(
            {
                "SPACEPORT_DATA": str(data),
                "SPACEPORT_DATABASE_URL": f"sqlite:///{cluster.data / 'spaceport.db'}",
                "DOCKER_HOST": engine,
            }
        )
        self.proc = subprocess.Popen(
            [*SPACEPORT, "worker", "--builds-only", "--concurrency", "1"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.control = Celery(broker=cluster.env["SPACEPORT_REDIS_URL"]).control
        host = os.uname().nodename
        self.ours, self.theirs = f"build-{self.proc.pid}@{host}", f"spaceport@{host}"
        deadline = time.monotonic() + 60
        while not self.control.ping(destination=[self.ours], timeout=2):
            if time.monotonic() > deadline:
                raise SystemExit("the build worker did not start")

    def only(self, remote: bool) -> None:
        on, off = (self.ours, self.theirs) if remote else (self.theirs, self.ours)
        self.control.add_consumer("build", destination=[on], reply=True)
        self.control.cancel_consumer("build", destination=[off], reply=True)

    def stop(self) -> None:
        self.control.add_consumer("build", destination=[self.theirs], reply=True)
        self.proc.terminate()
        self.proc.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pushes", type=int, default=3)
    parser.add_argument("--spread", type=int, default=30)
    args = parser.parse_args()
    from spaceport import devcluster

    made = not devcluster.nodes()
    devcluster.up(3)
    single = Platform("single", 18780, 13, {})
    cluster = Platform(
        "cluster",
        18880,
        15,
        {
            "SPACEPORT_RUNTIME": "swarm",
            "SPACEPORT_SWARM_MANAGERS": json.dumps(devcluster.managers()),
            "SPACEPORT_REGISTRY": devcluster.REGISTRY,
            "SPACEPORT_REGISTRY_PUSH": devcluster.REGISTRY_PUSH,
        },
    )
    out: dict[str, Any] = {"nodes": len(devcluster.nodes())}
    try:
        single.up()
        cluster.up()
        times: dict[str, list[float]] = {"single": [], "cluster": []}
        for _ in range(args.pushes):  # interleaved: the machine's load hits both alike
            for label, platform in (("single", single), ("cluster", cluster)):
                _, took = platform.deploy(static_app(uuid.uuid4().hex))
                times[label].append(took)
        med = {k: statistics.median(v) for k, v in times.items()}
        out["push_to_running_s"] = {k: [round(x, 2) for x in v] for k, v in times.items()}
        out["push_to_running_ratio_cluster_vs_single"] = round(med["cluster"] / med["single"], 2)

        engines = {n.name: n.engine for n in devcluster.nodes()}
        fails = []
        for _ in range(2):
            marker = uuid.uuid4().hex
            space_id, _ = cluster.deploy(static_app(marker))
            fails.append(failover(cluster, space_id, marker))
            time.sleep(5)  # the node is back and Ready
        out["failover"] = fails

        spread: dict[str, int] = {}
        for _ in range(args.spread):
            space_id, _ = cluster.deploy(static_app(uuid.uuid4().hex))
            node = cluster.runtime(space_id)["node"]
            spread[node] = spread.get(node, 0) + 1
        out["spread"] = spread
        memory: dict[str, int] = {}
        for name, url in engines.items():
            client = docker.DockerClient(base_url=url)
            total = 0
            for c in client.containers.list(filters={"label": "org.spaceport.managed=true"}):
                stats = c.stats(stream=False)
                mem = stats.get("memory_stats", {})
                total += int(mem.get("usage", 0)) - int(mem.get("stats", {}).get("cache", 0))
            memory[name] = round(total / 2**20)
        out["app_memory_mib_per_node"] = memory

        worker = BuildWorker(cluster, engines["node2"])
        try:
            built: dict[str, list[float]] = {"control_plane_worker": [], "remote_worker": []}
            for _ in range(args.pushes):
                for label, remote in (("control_plane_worker", False), ("remote_worker", True)):
                    worker.only(remote)
                    _, took = cluster.deploy(static_app(uuid.uuid4().hex))
                    built[label].append(took)
        finally:
            worker.stop()
        out["remote_build_push_to_running_s"] = {
            k: [round(x, 2) for x in v] for k, v in built.items()
        }
        out["remote_build_ratio_remote_vs_control_plane"] = round(
            statistics.median(built["remote_worker"])
            / statistics.median(built["control_plane_worker"]),
            2,
        )
    finally:
        single.down()
        cluster.down()
        instance = hashlib.sha1(str(single.data).encode()).hexdigest()[:12]
        for c in docker.from_env().containers.list(
            all=True, filters={"label": f"org.spaceport.instance={instance}"}
        ):
            c.remove(force=True)
        leave_cluster(made)
    print(json.dumps(out, indent=2))


def leave_cluster(made: bool) -> None:
    """Remove the Swarm services the bench's platforms left, then the dev cluster if the bench
    made it."""
    from spaceport import devcluster

    manager = docker.DockerClient(base_url=devcluster.managers()[0])
    for service in manager.services.list(filters={"label": "org.spaceport.managed=true"}):
        service.remove()
    if made:
        devcluster.down()


if __name__ == "__main__":
    main()
