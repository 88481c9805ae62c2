"""Benchmark: compressing an idle app on a cluster's node (a helper container there) vs on this
machine (the squeeze in the caller's process, as on one node).

The same app (Python holding `--ballast` MiB it touched once) runs twice: on this machine's
engine and on node2 of the dev cluster (`spaceport cluster up`). Each round squeezes both,
interleaved: here with `memory_squeeze.squeeze`, there with `node_helper.run_module` (create,
copy the code in, start, wait, read, remove), then both touch their pages back (a request
after the idle spell) for the next round. Prints one JSON object: time to compress and memory
moved, side by side, and the ratio (docs/benchmarks.md has a run). Needs root and a zram swap.

    PYTHONPATH=platform:builder .venv/bin/python bench/bench_node_helper.py --rounds 5
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

import docker

from spaceport import devcluster
from spaceport.engine import memory_squeeze, node_helper, zram

IMAGE = "spaceport/python:3.11"  # the base image `make up` builds; any Python 3 does
HELPER = "spaceport/node-helper:bench"
APP = """
import signal, sys
held = bytearray({mib} * 2**20)
def touch(*_):
    for i in range(0, len(held), 4096):
        held[i] = (held[i] + 1) % 256
touch()
signal.signal(signal.SIGUSR1, touch)
print("ready", flush=True)
while True:
    signal.pause()
"""


def start(client: docker.DockerClient, image: str, mib: int) -> docker.models.containers.Container:
    app = client.containers.run(
        image,
        ["python3", "-c", APP.format(mib=mib)],
        detach=True,
        mem_limit="512m",
        memswap_limit="512m",
        labels={"org.spaceport.bench": "node-helper"},
    )
    deadline = time.monotonic() + 60
    while b"ready" not in app.logs() and time.monotonic() < deadline:
        time.sleep(0.1)
    app.reload()
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--ballast", type=int, default=96, help="MiB each app holds")
    args = parser.parse_args()
    if zram.active() is None:
        sys.exit("no zram swap on this machine (`spaceport up` as root sets one up)")
    made = not devcluster.running()
    devcluster.up(3, fake_gpus=1)
    local = docker.from_env()
    node = docker.DockerClient(base_url=devcluster.node("node2").engine, timeout=120)
    # The helper's image in the registry, as `spaceport up` publishes it; node2 pulls it.
    pushed = f"{devcluster.REGISTRY_PUSH}/{HELPER}"
    local.images.get(IMAGE).tag(pushed)
    subprocess.run(["docker", "push", "-q", pushed], check=True, capture_output=True)
    remote = f"{devcluster.REGISTRY}/{HELPER}"
    node.images.pull(remote)
    image_id = str(local.images.get(IMAGE).id)  # what `spaceport up` notes as published
    apps = {"here": start(local, IMAGE, args.ballast), "node": start(node, remote, args.ballast)}
    times: dict[str, list[float]] = {"here": [], "node": []}
    moved: dict[str, list[int]] = {"here": [], "node": []}
    try:
        for _ in range(args.rounds):
            for where, app in apps.items():
                pid = int(app.attrs["State"]["Pid"])
                began = time.monotonic()
                if where == "here":
                    done = memory_squeeze.squeeze(pid, 512 * 2**20, container_id=app.id)
                    moved[where].append(done.moved_bytes)
                else:
                    said = node_helper.run_module(
                        node,
                        remote,
                        image_id,
                        "memory_squeeze",
                        [str(pid), str(512 * 2**20), node_helper.HOST_CGROUP, app.id],
                        ["zram"],
                    )
                    moved[where].append(int(said.get("moved_bytes", 0)))
                times[where].append(time.monotonic() - began)
            for app in apps.values():  # a request after the idle spell: pages back
                app.kill(signal="SIGUSR1")
            time.sleep(2)
    finally:
        for app in apps.values():
            app.remove(force=True)
        if made:
            devcluster.down()
    here, there = statistics.median(times["here"]), statistics.median(times["node"])
    print(
        json.dumps(
            {
                "rounds": args.rounds,
                "ballast_mib": args.ballast,
                "compress_s_median": {"here": round(here, 3), "node_helper": round(there, 3)},
                "compress_s_max": {
                    "here": round(max(times["here"]), 3),
                    "node_helper": round(max(times["node"]), 3),
                },
                "moved_mib_median": {
                    "here": round(statistics.median(moved["here"]) / 2**20, 1),
                    "node_helper": round(statistics.median(moved["node"]) / 2**20, 1),
                },
                "helper_over_here": round(there / here, 2) if here else None,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
