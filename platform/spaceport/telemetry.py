"""The platform's own event metrics (builds, deploys, restarts, sleeps, wakes, reconciler
passes), kept in Redis so that every process of a node adds to the same numbers.

Why Redis and not prometheus-client's multiprocess mode: the events happen in several
processes (the API and its reconciler thread, each Celery worker child, one-off CLI commands),
on several machines in cluster mode, and those processes come and go. Multiprocess mode needs
one shared directory set up before each process imports the library, and it sees only the
processes of one machine; Redis already runs for every node, is shared by all of them, and
keeps the counts across restarts of any process. An event is one pipelined round trip (a few
hundred microseconds), and events are rare (a build, a wake): nothing here sits in an app's
request path. The control plane's request latency, which is per request, stays in the API
process itself (`spaceport.api.request_metrics`, prometheus-client's own Histogram).

`/api/v1/metrics` reads the numbers back (`snapshot`) and renders them with prometheus-client
(services/monitoring.py). Each family is declared once below (`FAMILIES`): its kind, help,
label names and, for histograms, its buckets. Label values are bounded by construction: a
result, a reason from a fixed list, a tier, a Space id (rendered only for Spaces that exist).
Recording never raises: a lost count is better than a failed build because Redis blinked.
"""

from __future__ import annotations

import bisect
import json
import threading
from dataclasses import dataclass, field

import redis
import structlog

from spaceport.settings import Settings, get_settings

log = structlog.get_logger(__name__)

KEY = "spaceport:metrics"


@dataclass(frozen=True)
class Family:
    """One metric family: a counter (`_total` is added on output) or a histogram."""

    name: str
    kind: str  # "counter" | "histogram"
    help: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] = ()


BUILD_BUCKETS = (5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0)
WAKE_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
PASS_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        Family("spaceport_builds", "counter", "Builds finished, by result.", ("result",)),
        Family(
            "spaceport_build_failures",
            "counter",
            "Failed builds, by reason (the stage the Space was left in, or disk_full).",
            ("reason",),
        ),
        Family(
            "spaceport_build_duration_seconds",
            "histogram",
            "Time from a build's start to its end, by result.",
            ("result",),
            BUILD_BUCKETS,
        ),
        Family("spaceport_deploys", "counter", "App starts (deploys), by result.", ("result",)),
        Family(
            "spaceport_space_restarts",
            "counter",
            "Restarts of a Space, by cause: owner (asked for) or crash (automatic).",
            ("space", "cause"),
        ),
        Family("spaceport_sleeps", "counter", "Spaces put to sleep, by tier.", ("tier",)),
        Family("spaceport_wakes", "counter", "Spaces woken, by tier.", ("tier",)),
        Family(
            "spaceport_wake_duration_seconds",
            "histogram",
            "From a visitor's wake to the app serving: frozen (thawed) or stopped (started).",
            ("tier",),
            WAKE_BUCKETS,
        ),
        Family(
            "spaceport_reconcile_duration_seconds",
            "histogram",
            "One pass of the reconciler.",
            (),
            PASS_BUCKETS,
        ),
        Family(
            "spaceport_reconcile_step_duration_seconds",
            "histogram",
            "One step of a reconciler pass (sleep, orphans, node pool, routes, ...), by step.",
            ("step",),
            PASS_BUCKETS,
        ),
    )
}


def _field(name: str, labels: dict[str, str], part: str) -> str:
    return json.dumps([name, [labels[k] for k in FAMILIES[name].labels], part])


@dataclass
class Series:
    """A histogram's numbers for one label set: per-bucket counts (not cumulative), sum."""

    buckets: list[float] = field(default_factory=list)
    sum: float = 0.0


@dataclass
class Snapshot:
    """Every family's values: counters by label values, histograms by label values."""

    counters: dict[str, dict[tuple[str, ...], float]] = field(default_factory=dict)
    histograms: dict[str, dict[tuple[str, ...], Series]] = field(default_factory=dict)


_clients: dict[str, redis.Redis] = {}
_clients_lock = threading.Lock()


def _client(settings: Settings) -> redis.Redis:
    """One client per Redis URL and process (redis-py's pool reconnects after a fork)."""
    with _clients_lock:
        client = _clients.get(settings.redis_url)
        if client is None:
            client = redis.Redis.from_url(settings.redis_url, socket_timeout=2)
            _clients[settings.redis_url] = client
        return client


def redis_client(settings: Settings) -> redis.Redis:
    """This process's Redis client for reading what the node records (metrics, zerogpu)."""
    return _client(settings)


def _labels(name: str, labels: dict[str, str]) -> dict[str, str] | None:
    family = FAMILIES[name]
    if set(labels) != set(family.labels):
        log.error("telemetry.bad_labels", metric=name, labels=sorted(labels))
        return None
    return labels


def count(name: str, amount: float = 1.0, settings: Settings | None = None, **labels: str) -> None:
    """Add `amount` to counter `name` (declared in FAMILIES) for these label values."""
    settings = settings or get_settings()
    if not settings.metrics or _labels(name, labels) is None:
        return
    try:
        _client(settings).hincrbyfloat(KEY, _field(name, labels, "total"), amount)
    except redis.RedisError as exc:
        log.warning("telemetry.lost", metric=name, error=str(exc))


def observe(name: str, value: float, settings: Settings | None = None, **labels: str) -> None:
    """Record one observation of histogram `name`: its bucket, its sum, in one round trip."""
    observe_many(name, [(value, labels)], settings)


def observe_many(
    name: str, observations: list[tuple[float, dict[str, str]]], settings: Settings | None = None
) -> None:
    """Record observations of histogram `name` (value, labels) in one round trip: a
    reconciler pass's steps, say, not one trip each."""
    settings = settings or get_settings()
    if not settings.metrics:
        return
    bounds = FAMILIES[name].buckets
    try:
        pipe = _client(settings).pipeline(transaction=False)
        for value, labels in observations:
            if _labels(name, labels) is None:
                continue
            index = bisect.bisect_left(bounds, value)  # the first bound >= value; +Inf at end
            pipe.hincrbyfloat(KEY, _field(name, labels, f"b{index}"), 1)
            pipe.hincrbyfloat(KEY, _field(name, labels, "sum"), value)
        pipe.execute()
    except redis.RedisError as exc:
        log.warning("telemetry.lost", metric=name, error=str(exc))


def snapshot(settings: Settings | None = None) -> Snapshot:
    """Every recorded value, read in one HGETALL (fields of families no longer declared, or
    with another label set than declared now, are skipped)."""
    settings = settings or get_settings()
    raw: dict[bytes, bytes] = _client(settings).hgetall(KEY)  # type: ignore[assignment]
    out = Snapshot()
    for key, value in raw.items():
        try:
            name, label_values, part = json.loads(key)
            family, number = FAMILIES[name], float(value)
        except (ValueError, KeyError, TypeError):
            continue
        values = tuple(str(v) for v in label_values)
        if len(values) != len(family.labels):
            continue
        if family.kind == "counter":
            out.counters.setdefault(name, {})[values] = number
            continue
        series = out.histograms.setdefault(name, {}).setdefault(
            values, Series([0.0] * (len(family.buckets) + 1))
        )
        if part == "sum":
            series.sum = number
        elif part.startswith("b") and part[1:].isdigit() and int(part[1:]) < len(series.buckets):
            series.buckets[int(part[1:])] = number
    return out
