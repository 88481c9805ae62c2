"""A bounded, downsampled history of each Space and of the node, kept in Redis, for the
console's graphs (`GET /api/v1/spaces/{owner}/{name}/metrics/history`, `/api/v1/admin/history`).

Prometheus is the place for long history and queries; this store is what a Space's owner sees
without running one. A sampler (`sample`, a reconciler step) writes one point per series per
`history_interval_s` (a minute by default), whichever node's reconciler gets the slot first:
- per Space: requests, 5xx errors and mean latency in that interval (deltas of the proxy's
  counters, which it keeps itself: nothing sits in the request path; proxies on other
  machines' added, proxy/traffic.py `followers_traffic`), CPU (cores used: the
  delta of its cgroup's CPU time) and memory of its container, and its stage (the sleep/wake
  timeline);
- for the node: CPU busy fraction, memory and disk used, and the busiest Spaces of the interval.

Bounded by construction: two Redis lists per Space with something to say (a container, traffic
or a stage change; an idle sleeping Space writes nothing and its lists expire after
`RETAIN_S`), trimmed on each write to `FINE_POINTS` (a day at a minute) and `COARSE_POINTS`
(a week at ten minutes, each the aggregate of ten fine points); one hash of the last counter
readings, which forgets deleted Spaces. Redis persists it, so a node restart keeps the history.
Build durations come from the database's builds (already kept), not from here.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import redis
import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session

from spaceport import telemetry
from spaceport.db.models import Build, Space
from spaceport.db.session import session_scope
from spaceport.proxy import make_proxy
from spaceport.proxy.base import SpaceTraffic
from spaceport.proxy.traffic import followers_traffic
from spaceport.services.monitoring import container_usage, node_use
from spaceport.settings import Settings
from spaceport.timefmt import iso_seconds

log = structlog.get_logger(__name__)

PREFIX = "spaceport:history"
LAST = f"{PREFIX}:last"  # hash: series -> its last counter readings (JSON)
NODE = "@node"  # the node's series name (never a Space id: those have a slash)
FINE_POINTS = 1440  # a day at one point a minute
COARSE_FACTOR = 10  # a coarse point aggregates this many fine ones
COARSE_POINTS = 1008  # a week at ten minutes
RETAIN_S = 8 * 86400  # lists nobody writes to expire (an idle Space's, a deleted one's)
TOP_SPACES = 5  # the busiest Spaces kept in each node point


# A point is stored as a JSON array of these fields (about half the bytes of an object).
SPACE_FIELDS = ("t", "req", "err", "lat", "cpu", "mem", "stage")
NODE_FIELDS = ("t", "cpu", "mem", "memTotal", "disk", "diskTotal", "top")


def key(resolution: str, series: str) -> str:
    return f"{PREFIX}:{resolution}:{series}"


def _fields(series: str) -> tuple[str, ...]:
    return NODE_FIELDS if series == NODE else SPACE_FIELDS


def encode(series: str, point: Mapping[str, Any]) -> str:
    values = [point.get(f) for f in _fields(series)]
    values = [int(v) if isinstance(v, float) and v.is_integer() else v for v in values]
    return json.dumps(values, separators=(",", ":"))


def decode(series: str, raw: bytes | str) -> dict[str, Any]:
    return dict(zip(_fields(series), json.loads(raw), strict=True))


def _delta(now: float, before: float | None) -> float:
    """A counter's growth; a lower reading means it restarted from zero (a proxy restart)."""
    if before is None:
        return 0.0
    return now - before if now >= before else now


def space_point(
    t: int,
    traffic: SpaceTraffic | None,
    cpu_s: float | None,
    memory: int | None,
    stage: str,
    last: Mapping[str, Any],
    followers: Mapping[str, SpaceTraffic] | None = None,
    known: Collection[str] = (),
) -> tuple[dict[str, Any], dict[str, Any]]:
    """One Space's point for slot `t` and its new readings, from its readings at the last
    slot (`last`, empty the first time: no deltas then). `followers`: its counters at each
    proxy on another machine that has any, by its id; each proxy's counters grow (or restart)
    on their own, so each is compared with its own last reading, and the growths are added.
    `known`: the followers that had reported at the last slot."""
    t_ = traffic or SpaceTraffic()
    req = _delta(t_.requests, last.get("req"))
    err = _delta(t_.errors, last.get("err"))
    count = _delta(t_.duration_count, last.get("n"))
    total = _delta(t_.duration_sum, last.get("sum"))
    before_f, seen = last.get("f") or {}, {}
    for proxy_id, ft in (followers or {}).items():
        now = [ft.requests, ft.errors, ft.duration_count, ft.duration_sum]
        # A follower that reported at the last slot without counts for this Space listed it
        # since, once it had requests: from zero. One new since then (or after this release
        # came) may have counted for long: from the next slot.
        was = before_f.get(proxy_id) or ([0.0] * 4 if last and proxy_id in known else None)
        if was is not None:
            req += _delta(now[0], was[0])
            err += _delta(now[1], was[1])
            count += _delta(now[2], was[2])
            total += _delta(now[3], was[3])
        seen[proxy_id] = now
    cpu = None
    if cpu_s is not None and last.get("cpu") is not None and t > last.get("t", t):
        cpu = round(_delta(cpu_s, last["cpu"]) / (t - last["t"]), 4)
    point = {
        "t": t,
        "req": req,
        "err": err,
        "lat": round(total / count * 1000, 2) if count else None,
        "cpu": cpu,
        "mem": memory,
        "stage": stage,
    }
    readings: dict[str, Any] = {
        "t": t,
        "req": t_.requests,
        "err": t_.errors,
        "n": t_.duration_count,
        "sum": t_.duration_sum,
        "cpu": cpu_s,
        "stage": stage,
    }
    if seen:
        readings["f"] = seen
    return point, readings


def _aggregate(points: Sequence[Mapping[str, Any]], t: int) -> dict[str, Any]:
    """Fine points (newest first) as one coarse point: sums of counts, request-weighted mean
    latency, mean CPU, peak memory, the last stage; node points: mean CPU, peak memory, the
    last disk, the busiest Spaces over all of them."""

    def mean(name: str) -> float | None:
        values = [p[name] for p in points if p.get(name) is not None]
        return round(sum(values) / len(values), 4) if values else None

    def peak(name: str) -> Any:
        values = [p[name] for p in points if p.get(name) is not None]
        return max(values) if values else None

    if "top" in points[0]:
        top: dict[str, float] = {}
        for p in points:
            for space_id, n in p["top"]:
                top[space_id] = top.get(space_id, 0.0) + n
        busiest = sorted(top.items(), key=lambda kv: -kv[1])[:TOP_SPACES]
        return {**points[0], "t": t, "cpu": mean("cpu"), "mem": peak("mem"), "top": busiest}
    req = sum(p["req"] for p in points)
    timed = [(p["lat"], p["req"]) for p in points if p.get("lat") is not None]
    weight = sum(n for _, n in timed)
    lat = round(sum(lat * n for lat, n in timed) / weight, 2) if weight else None
    err = sum(p["err"] for p in points)
    return {**points[0], "t": t, "req": req, "err": err, "lat": lat, "cpu": mean("cpu"),
            "mem": peak("mem")}  # fmt: skip


def record(client: redis.Redis, points: Mapping[str, dict[str, Any]], interval_s: int) -> None:
    """Append each series' point (`t` its slot start) to its fine list and fold it into the
    current coarse point; trim both. One pipeline for all series."""
    if not points:
        return
    step = interval_s * COARSE_FACTOR
    read = client.pipeline(transaction=False)
    for series in points:
        read.lrange(key("fine", series), 0, COARSE_FACTOR - 2)
        read.lindex(key("coarse", series), 0)
    answers = read.execute()
    write = client.pipeline(transaction=False)
    for i, (series, point) in enumerate(points.items()):
        recent, head = answers[2 * i], answers[2 * i + 1]
        window = point["t"] - point["t"] % step
        same = [p for p in (decode(series, r) for r in recent) if p["t"] >= window]
        coarse = _aggregate([point, *same], window)
        fine_key, coarse_key = key("fine", series), key("coarse", series)
        write.lpush(fine_key, encode(series, point))
        write.ltrim(fine_key, 0, FINE_POINTS - 1)
        body = encode(series, coarse)
        if head is not None and decode(series, head)["t"] == window:
            write.lset(coarse_key, 0, body)
        else:
            write.lpush(coarse_key, body)
            write.ltrim(coarse_key, 0, COARSE_POINTS - 1)
        write.expire(fine_key, RETAIN_S)
        write.expire(coarse_key, RETAIN_S)
    write.execute()


def forget(client: redis.Redis, existing: set[str]) -> list[str]:
    """Drop the readings and lists of Spaces that no longer exist; returns their ids."""
    gone = [
        s
        for raw in client.hkeys(LAST)
        if (s := raw.decode() if isinstance(raw, bytes) else str(raw)) != NODE and s not in existing
    ]
    if gone:
        client.hdel(LAST, *gone)
        client.delete(*[key(r, s) for s in gone for r in ("fine", "coarse")])
    return gone


def _claim(client: redis.Redis, slot: int, interval_s: int) -> bool:
    """Whether this process samples this slot: the first of all reconcilers to ask."""
    return bool(client.set(f"{PREFIX}:slot:{slot}", 1, nx=True, ex=max(interval_s * 3, 10)))


def sample(settings: Settings, now: float | None = None) -> bool:
    """One point per series for the current slot, unless another process wrote it already.

    Reads the proxy's counters (one admin-socket call), the engine's containers and their
    cgroups, the Spaces' stages (one query) and /proc; writes in two pipelines."""
    interval = max(1, int(settings.history_interval_s))
    now = time.time() if now is None else now
    slot = int(now // interval)
    t = slot * interval
    client = telemetry.redis_client(settings)
    if not _claim(client, slot, interval):
        return False
    traffic = asyncio.run(make_proxy(settings).traffic())
    followers = followers_traffic(client, fresh_s=None)  # (a silent one's counts stand still)
    usage = container_usage(settings)
    with session_scope() as session:
        stages = {f"{o}/{n}": s for o, n, s in session.execute(_STAGES).all()}
    raw: dict[bytes, bytes] = client.hgetall(LAST)  # type: ignore[assignment]
    last = {k.decode(): json.loads(v) for k, v in raw.items()}
    known = set(last.get(NODE, {}).get("f") or ())
    points: dict[str, dict[str, Any]] = {}
    readings: dict[str, str] = {}
    for space_id, stage in stages.items():
        use = usage.get(space_id)
        before = readings_before(last, space_id)
        point, reading = space_point(
            t,
            traffic.get(space_id),
            use.cpu_seconds if use else None,
            use.memory_bytes if use else None,
            stage,
            before,
            {p: counts[space_id] for p, counts in followers.items() if space_id in counts},
            known,
        )
        readings[space_id] = json.dumps(reading)
        if use or point["req"] or point["err"] or stage != before.get("stage"):
            points[space_id] = point  # an idle sleeping Space writes nothing
    node = node_use(settings)
    before = last.get(NODE, {})
    busy = _delta(node.cpu_busy_s, before.get("busy"))
    idle = _delta(node.cpu_idle_s, before.get("idle"))
    busiest = sorted(
        ((s, p["req"]) for s, p in points.items() if p["req"] > 0), key=lambda kv: -kv[1]
    )[:TOP_SPACES]
    points[NODE] = {
        "t": t,
        "cpu": round(busy / (busy + idle), 4) if busy + idle > 0 else None,
        "mem": node.memory_bytes - node.memory_available_bytes,
        "memTotal": node.memory_bytes,
        "disk": node.disk_bytes - node.disk_free_bytes,
        "diskTotal": node.disk_bytes,
        "top": busiest,
    }
    readings[NODE] = json.dumps(
        {"busy": node.cpu_busy_s, "idle": node.cpu_idle_s, "f": sorted(followers)}
    )
    record(client, points, interval)
    client.hset(LAST, mapping=readings)  # type: ignore[arg-type]
    forget(client, set(stages))
    return True


_STAGES = select(Space.owner, Space.name, Space.stage)

# The readings a Space new since the last slot is compared with: its proxy counters started at
# zero, so its first requests count (else a Space created, built and visited between two slots,
# as a busy reconciler's can be, would show none of them). Only when the sampler has run before
# (the node's readings exist): after Redis lost them, counters are compared from the next slot.
NEW_SPACE: dict[str, Any] = {"req": 0, "err": 0, "n": 0, "sum": 0.0}


def readings_before(last: Mapping[str, Any], space_id: str) -> Mapping[str, Any]:
    """A Space's readings at the last slot; zero counters for a Space new since then."""
    return last.get(space_id) or (NEW_SPACE if NODE in last else {})


RANGES = {"1h": 3600, "6h": 6 * 3600, "1d": 86400, "7d": 7 * 86400}


def read(settings: Settings, series: str, range_s: int, now: float | None = None) -> list[Any]:
    """The points of the last `range_s` seconds, oldest first: fine points where a day of
    them covers the range, else coarse ones."""
    interval = max(1, int(settings.history_interval_s))
    fine = range_s <= FINE_POINTS * interval
    client = telemetry.redis_client(settings)
    raw = client.lrange(key("fine" if fine else "coarse", series), 0, -1)
    since = (time.time() if now is None else now) - range_s
    points = [p for p in (decode(series, r) for r in raw) if p["t"] > since]
    return points[::-1]


def space_history(settings: Settings, session: Session, space: Space, range_s: int) -> Any:
    """What the Space page's graphs draw: its points and its last builds' durations."""
    points = [
        {
            "t": p["t"],
            "requests": p["req"],
            "errors": p["err"],
            "latencyMs": p["lat"],
            "cpu": p["cpu"],
            "memoryBytes": p["mem"],
            "stage": p["stage"],
        }
        for p in read(settings, space.space_id, range_s)
    ]
    builds = session.scalars(
        select(Build)
        .where(
            Build.space_id == space.id,
            Build.started_at.is_not(None),
            Build.finished_at.is_not(None),
        )
        .order_by(Build.id.desc())
        .limit(20)
    ).all()
    return {
        "space": space.space_id,
        "rangeS": range_s,
        "intervalS": _step(settings, range_s),
        "points": points,
        "builds": [
            {
                "id": b.id,
                "commit": b.commit_sha[:7],
                "status": b.status,
                "seconds": round((b.finished_at - b.started_at).total_seconds(), 1),
                "finishedAt": iso_seconds(b.finished_at),
            }
            for b in reversed(builds)
            if b.finished_at and b.started_at
        ],
    }


def node_history(settings: Settings, range_s: int) -> Any:
    """What the admin page's graphs draw: the node's use and the busiest Spaces of the range."""
    points = read(settings, NODE, range_s)
    totals: dict[str, float] = {}
    for p in points:
        for space_id, n in p.get("top", []):
            totals[space_id] = totals.get(space_id, 0.0) + n
    busiest = sorted(totals.items(), key=lambda kv: -kv[1])[:10]
    return {
        "rangeS": range_s,
        "intervalS": _step(settings, range_s),
        "points": [
            {
                "t": p["t"],
                "cpu": p["cpu"],
                "memoryBytes": p["mem"],
                "memoryTotalBytes": p["memTotal"],
                "diskBytes": p["disk"],
                "diskTotalBytes": p["diskTotal"],
            }
            for p in points
        ],
        "busiest": [{"space": s, "requests": n} for s, n in busiest],
    }


def _step(settings: Settings, range_s: int) -> int:
    interval = max(1, int(settings.history_interval_s))
    return interval if range_s <= FINE_POINTS * interval else interval * COARSE_FACTOR
