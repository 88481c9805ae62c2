"""Benchmark: a Gradio Space's code-only push on the cluster, into a standby vs started fresh.

Starts Spaceport in cluster mode on the dev Swarm (`spaceport cluster up`, 3 nodes) with
standbys on, deploys a Gradio Space, then pushes code-only versions, interleaved:
- standby: the Space's standby service (on whichever node Swarm put it) has imported Gradio;
  the push's code is copied into its task's container through that node's engine;
- fresh: the standby's service is removed first, so the version starts in a new service (the
  node pulls its image's top layer, Python imports Gradio).
Each is timed from `git push` to the new version answering through the proxy; `--rounds`
each. Prints one JSON object (docs/benchmarks.md has a run). Needs root (the dev cluster).

    .venv/bin/python bench/bench_cluster_standby.py --rounds 3
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import docker

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_build import greets_at
from bench_cluster import ROOT, Platform, leave_cluster

APP = """import gradio as gr

def greet(name: str) -> str:
    return "{greeting}, " + name + "!"

gr.Interface(fn=greet, inputs="text", outputs="text").launch()
"""


def push(platform: Platform, space_id: str, greeting: str, reqs: str) -> None:
    work = Path(tempfile.mkdtemp()) / "app"
    shutil.copytree(ROOT / "examples" / "gradio-hello", work)
    (work / "app.py").write_text(APP.format(greeting=greeting))
    (work / "requirements.txt").write_text(reqs)
    git = ["git", "-c", "user.name=b", "-c", "user.email=b@example.invalid"]
    for argv in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", greeting]):
        subprocess.run([*git, *argv], cwd=work, check=True)
    remote = f"http://admin:{platform.token}@127.0.0.1:{platform.port}/spaces/{space_id}"
    subprocess.run(["git", "push", "-qf", remote, "main"], cwd=work, check=True)


def answers(platform: Platform, space_id: str, greeting: str) -> bool:
    owner, name = space_id.split("/")
    return greets_at(platform.port, f"{owner}-{name}.localhost:{platform.port}", greeting)


def wait(check: object, timeout: float, what: str) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if check():  # type: ignore[operator]
            return time.monotonic() - start
        time.sleep(0.1)
    raise SystemExit(f"{what}: not within {timeout} s")


def standby_service(manager: docker.DockerClient, space_id: str) -> str | None:
    """The Space's waiting standby: a service running the launcher that said it waits."""
    for service in manager.services.list(filters={"label": f"org.spaceport.space={space_id}"}):
        args = service.attrs["Spec"]["TaskTemplate"]["ContainerSpec"].get("Args") or []
        labels = service.attrs["Spec"].get("Labels") or {}
        if "-c" in args and "org.spaceport.runs" not in labels:
            logs = b"".join(service.logs(stdout=True, stderr=True)).decode(errors="replace")
            if "waiting for the app" in logs:
                return str(service.id)
    return None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    from spaceport import devcluster

    made = not devcluster.nodes()
    devcluster.up(3)
    cluster = Platform(
        "standby",
        18980,
        14,
        {
            "SPACEPORT_RUNTIME": "swarm",
            "SPACEPORT_SWARM_MANAGERS": json.dumps(devcluster.managers()),
            "SPACEPORT_REGISTRY": devcluster.REGISTRY,
            "SPACEPORT_REGISTRY_PUSH": devcluster.REGISTRY_PUSH,
            "SPACEPORT_STANDBY_TTL_S": "600",
            "SPACEPORT_STANDBY_DELAY_S": "1",
        },
    )
    manager = docker.DockerClient(base_url=devcluster.managers()[0])
    out: dict[str, object] = {"nodes": len(devcluster.nodes())}
    times: dict[str, list[float]] = {"standby": [], "fresh": []}
    try:
        cluster.up()
        name = f"b-{uuid.uuid4().hex[:8]}"
        r = cluster.api.post(
            "/api/repos/create", json={"type": "space", "name": name, "sdk": "gradio"}
        )
        r.raise_for_status()
        space_id, reqs = f"admin/{name}", f"# {uuid.uuid4().hex}\n"
        push(cluster, space_id, "v0", reqs)
        wait(lambda: answers(cluster, space_id, "v0"), 900, "the first version")
        for i in range(args.rounds):
            for label in ("standby", "fresh"):
                wait(lambda: standby_service(manager, space_id), 600, "a standby")
                if label == "fresh":
                    service = standby_service(manager, space_id)
                    if service:
                        manager.services.get(service).remove()
                        time.sleep(2)  # (its row is the reconciler's to sweep)
                greeting = f"{label}{i}"
                start = time.monotonic()
                push(cluster, space_id, greeting, reqs)
                wait(lambda: answers(cluster, space_id, greeting), 300, greeting)  # noqa: B023
                times[label].append(round(time.monotonic() - start, 2))
        out["push_to_answer_s"] = times
        out["ratio_fresh_vs_standby"] = round(
            statistics.median(times["fresh"]) / statistics.median(times["standby"]), 2
        )
    finally:
        cluster.down()
        leave_cluster(made)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
