"""What the graphs' sampler costs per pass, measured side by side in one run (docs/benchmarks.md,
"Graphs' history").

One sampler pass (services/history.py) is: a slot claim (one Redis SET NX; every other pass of
every reconciler stops there), the proxy's counters (one admin-socket call, which the
reconciler's traffic step already makes), the engine's container list and each container's
cgroup files, one database query, /proc, and two Redis pipelines. Measured here:
(a) a container's CPU and memory from its cgroup (engine/cgroup_stats.py) against
    `docker stats` one-shot and `docker stats` as it streams by default (two samples), for the
    containers running on this machine;
(b) `history.record` for 10, 100 and 1,000 Spaces in one pass (the Redis part);
(c) the claim that most passes end at;
(d) Redis memory of one Space's full history (a day at the interval plus a week of coarse
    points), the bound per Space with something to say.

    .venv/bin/python bench/bench_history.py [--rounds 5] [--redis-db 14]

Needs: Docker and the image `--image` (started `--containers` times, running `sleep`), and
Redis on 127.0.0.1:6379 (keys under a scratch prefix of database `--redis-db`, removed
afterwards).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import docker
import redis

sys.path.insert(0, str(Path(__file__).parent))
from bench_proxy import say, table

from spaceport.engine.cgroup_stats import usage_of
from spaceport.services import history


def timed(fn: Callable[[], object], rounds: int) -> float:
    """The median seconds of `rounds` calls."""
    runs = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs)


def point(t: int, i: int) -> dict[str, object]:
    return {"t": t, "req": i % 50, "err": i % 3, "lat": 12.34, "cpu": 0.1234,
            "mem": 123_456_789, "stage": "RUNNING"}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--redis-db", type=int, default=14)
    parser.add_argument("--containers", type=int, default=10)
    parser.add_argument("--image", default="spaceport/python:3.11")
    args = parser.parse_args()

    engine = docker.from_env()
    label = f"org.spaceport.bench={uuid.uuid4().hex}"
    containers = [
        engine.containers.run(
            args.image, ["sleep", "600"], detach=True, remove=True, labels=[label]
        )
        for _ in range(args.containers)
    ]
    try:
        run(args, engine, containers, label)
    finally:
        for c in containers:
            c.kill()


def run(args: argparse.Namespace, engine: Any, containers: list[Any], label: str) -> None:
    for c in containers:
        c.reload()
    pids = [c.attrs["State"]["Pid"] for c in containers]
    say(f"{len(containers)} running containers")
    rows: list[tuple[str, ...]] = [("what", "per pass (median)", "per container or Space")]
    cgroup = timed(lambda: [usage_of(p) for p in pids], args.rounds)
    listing = timed(lambda: engine.containers.list(filters={"label": label}), args.rounds)
    one_shot = timed(lambda: [c.stats(stream=False, one_shot=True) for c in containers], 1)
    sample = containers[:3]
    streamed = timed(lambda: [c.stats(stream=False) for c in sample], 1) * len(containers) / 3
    n = len(containers)
    rows += [
        ("cgroup files, all containers", f"{cgroup * 1e3:.2f} ms", f"{cgroup / n * 1e6:.0f} us"),
        ("engine's container list", f"{listing * 1e3:.1f} ms", f"{listing / n * 1e3:.2f} ms"),
        ("docker stats one-shot", f"{one_shot * 1e3:.0f} ms", f"{one_shot / n * 1e3:.1f} ms"),
        ("docker stats (default)", f"{streamed:.1f} s", f"{streamed / n:.2f} s"),
    ]

    prefix = f"spaceport:history-bench:{uuid.uuid4().hex}"
    history.PREFIX, history.LAST = prefix, f"{prefix}:last"
    client = redis.Redis.from_url(f"redis://127.0.0.1:6379/{args.redis_db}")
    try:
        slot = iter(range(10**6))  # each pass a new minute
        for spaces in (10, 100, 1000):

            def one_pass(spaces: int = spaces) -> None:
                t = next(slot) * 60
                history.record(client, {f"o/s{i}": point(t, i) for i in range(spaces)}, 60)

            cost = timed(one_pass, args.rounds)
            per = f"{cost / spaces * 1e6:.0f} us"
            rows.append((f"history.record, {spaces} Spaces", f"{cost * 1e3:.1f} ms", per))
        claim = timed(lambda: history._claim(client, 1, 60), args.rounds * 20)
        rows.append(("slot claim (a pass that ends there)", f"{claim * 1e3:.2f} ms", "-"))
        full = history.FINE_POINTS + history.COARSE_FACTOR * history.COARSE_POINTS
        for t in range(full):
            history.record(client, {"o/full": point(t * 60, t)}, 60)
        size = sum(
            int(client.memory_usage(history.key(r, "o/full")) or 0) for r in ("fine", "coarse")
        )
        lengths = [client.llen(history.key(r, "o/full")) for r in ("fine", "coarse")]
        points = f"{lengths[0]} + {lengths[1]} points"
        rows.append(("Redis memory, one Space's full history", f"{size / 1024:.0f} KiB", points))
    finally:
        keys = list(client.scan_iter(f"{prefix}:*"))
        if keys:
            client.delete(*keys)
    print(table(rows))


if __name__ == "__main__":
    main()
