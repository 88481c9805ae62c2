"""Per-Space traffic: read from the proxy's own counters, never by putting the control plane in
the request path.

nginx counts requests per Space itself (its Lua counters, `NginxProxy.traffic`); Caddy counts
them per host (`metrics.per_host`), and `caddy_config.metrics_hosts` says which labels belong
to which Space (`per_space` below). From those counters this module
- keeps `Space.last_request_at` current for the sleep timer (`record_activity`, called by the
  reconciler each pass: a Space whose request count grew, or that has a request in flight, such
  as an open Streamlit websocket, was used just now), and
- renders them per Space in Prometheus' text format for `GET /api/v1/metrics`.

Proxies on other machines (`spaceport proxy --follow`) publish their counters in Redis
(`publish_counts`); the metrics show them per proxy (label `proxy`) and the graphs add them.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict

import redis
import structlog
from sqlalchemy import update

from spaceport.db.models import Space, utcnow
from spaceport.db.session import session_scope
from spaceport.proxy.base import SpaceTraffic
from spaceport.settings import Settings

log = structlog.get_logger(__name__)

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
_SEEN_KEY = "spaceport:traffic:seen"
PROXIES_KEY = "spaceport:traffic:proxies"
"""Each follower's counters, by its id: {"at": when it reported, "spaces": {id: counters}}."""
FRESH_S = 60.0  # a follower silent longer is left out of the metrics (its series end)
FORGET_S = 86400.0  # and one silent this long is forgotten (its counts too)


def parse_samples(text: str) -> Iterable[tuple[str, dict[str, str], float]]:
    """(metric name, labels, value) of each sample line of a Prometheus text exposition."""
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        if not m:
            continue
        try:
            value = float(m.group(3))
        except ValueError:
            continue
        yield m.group(1), dict(_LABEL.findall(m.group(2) or "")), value


def per_space(text: str, space_of_host: Mapping[str, str], server: str) -> dict[str, SpaceTraffic]:
    """Fold Caddy's per-host samples of `server` into one `SpaceTraffic` per Space."""
    out: dict[str, SpaceTraffic] = {}
    for name, labels, value in parse_samples(text):
        if labels.get("server") != server:
            continue
        space = space_of_host.get(labels.get("host", ""))
        if space is None:
            continue
        t = out.setdefault(space, SpaceTraffic())
        if name == "caddy_http_requests_total":
            t.requests += value
        elif name == "caddy_http_requests_in_flight":
            t.in_flight += value
        elif name == "caddy_http_request_duration_seconds_count":
            t.duration_count += value
            if labels.get("code", "").startswith("5"):
                t.errors += value
        elif name == "caddy_http_request_duration_seconds_sum":
            t.duration_sum += value
        elif name == "caddy_http_request_duration_seconds_bucket":
            le = labels.get("le", "+Inf")
            t.duration_buckets[le] = t.duration_buckets.get(le, 0.0) + value
    return out


def _le_key(le: str) -> float:
    return float("inf") if le == "+Inf" else float(le)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render_prometheus(
    traffic: Mapping[str, SpaceTraffic],
    followers: Mapping[str, Mapping[str, SpaceTraffic]] | None = None,
) -> str:
    """Per-Space series in Prometheus' text format (version 0.0.4): the node's proxy's, and
    each follower's (by its id) with a `proxy` label (`sum by (space)` adds them up)."""
    rows = [(f'space="{_escape(s)}"', traffic[s]) for s in sorted(traffic)]
    for proxy_id, spaces in sorted((followers or {}).items()):
        tag = f'proxy="{_escape(proxy_id)}"'
        rows += [(f'space="{_escape(s)}",{tag}', spaces[s]) for s in sorted(spaces)]
    families = [
        ("spaceport_space_requests_total", "counter", "Requests the proxy passed to the Space."),
        ("spaceport_space_errors_total", "counter", "Responses with a 5xx status."),
        ("spaceport_space_requests_in_flight", "gauge", "Requests open now (websockets too)."),
        ("spaceport_space_request_duration_seconds", "histogram", "Time to the full response."),
    ]
    lines: list[str] = []
    for name, kind, help_text in families:
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
        for label, t in rows:
            if kind == "histogram":
                buckets = t.duration_buckets or {"+Inf": 0.0}  # a histogram always has +Inf
                for le in sorted(buckets, key=_le_key):
                    count = buckets[le]
                    lines.append(f'{name}_bucket{{{label},le="{le}"}} {count:g}')
                lines.append(f"{name}_sum{{{label}}} {t.duration_sum:g}")
                lines.append(f"{name}_count{{{label}}} {t.duration_count:g}")
                continue
            value = {
                "spaceport_space_requests_total": t.requests,
                "spaceport_space_errors_total": t.errors,
                "spaceport_space_requests_in_flight": t.in_flight,
            }[name]
            lines.append(f"{name}{{{label}}} {value:g}")
    return "\n".join(lines) + "\n"


def active_spaces(
    now: Mapping[str, SpaceTraffic], before: Mapping[str, float] | None
) -> tuple[set[str], dict[str, float]]:
    """Spaces used since the last look (more requests, or one in flight), and the new marks.

    `before` is None on the very first look: counts from before it say nothing about now. A
    Space missing from an earlier look had no requests then (the proxy lists Spaces once they
    have traffic), so its first visitors count. A count lower than before means the proxy
    restarted: any request since counts as use.
    """
    used: set[str] = set()
    marks: dict[str, float] = {}
    for space_id, t in now.items():
        marks[space_id] = t.requests
        seen = None if before is None else before.get(space_id, 0.0)
        if seen is None:
            grew = False
        elif t.requests < seen:  # the proxy restarted and counts from zero
            grew = t.requests > 0
        else:
            grew = t.requests > seen
        if t.in_flight > 0 or grew:
            used.add(space_id)
    return used, marks


def _load_marks(client: redis.Redis, key: str = _SEEN_KEY) -> dict[str, float] | None:
    """The counts of the last look, or None when there was none (or it cannot be read)."""
    raw = client.get(key)
    if raw is None:
        return None
    try:
        return {str(k): float(v) for k, v in json.loads(raw).items()}
    except (ValueError, AttributeError):
        return None


def used_since_last_look(settings: Settings, client: redis.Redis, key: str) -> set[str]:
    """The Spaces this process's proxy saw used since the last look, whose counts `key` keeps
    (one key per proxy: the control plane's, each follower's)."""
    from spaceport.proxy import make_proxy

    return used_in(client, key, asyncio.run(make_proxy(settings).traffic()))


def used_in(client: redis.Redis, key: str, now: Mapping[str, SpaceTraffic]) -> set[str]:
    """The Spaces used since the counts `key` keeps, given the proxy's counts `now`."""
    with client.lock(f"{key}:lock", timeout=30, blocking_timeout=10):
        used, marks = active_spaces(now, _load_marks(client, key))
        client.set(key, json.dumps(marks), ex=int(FORGET_S))  # a proxy gone for good: dropped
    return used


def redis_now(client: redis.Redis) -> float:
    """Redis's clock: every machine's reports are stamped and aged by the same one."""
    seconds, micros = client.time()
    return float(seconds) + float(micros) / 1e6


def publish_counts(client: redis.Redis, proxy_id: str, traffic: Mapping[str, SpaceTraffic]) -> None:
    """A follower's counters, for the control plane's metrics and graphs."""
    spaces = {space_id: asdict(t) for space_id, t in traffic.items()}
    report = {"at": redis_now(client), "spaces": spaces}
    client.hset(PROXIES_KEY, proxy_id, json.dumps(report))


_FIELDS = set(SpaceTraffic.__dataclass_fields__)


def followers_traffic(
    client: redis.Redis, fresh_s: float | None = FRESH_S, now: float | None = None
) -> dict[str, dict[str, SpaceTraffic]]:
    """Each follower's counters by its id: those that reported within `fresh_s` (None: all it
    remembers; a silent one's counts stand still). Followers silent for `FORGET_S` are
    forgotten here; a report this release cannot read is left out (not deleted: its follower
    may be newer)."""
    now = redis_now(client) if now is None else now
    out: dict[str, dict[str, SpaceTraffic]] = {}
    stale = []
    raw: dict[bytes, bytes] = client.hgetall(PROXIES_KEY)  # type: ignore[assignment]
    for field, value in raw.items():
        proxy_id = field.decode() if isinstance(field, bytes) else str(field)
        try:
            report = json.loads(value)
            age = now - float(report["at"])
        except (ValueError, KeyError, TypeError):
            stale.append(proxy_id)  # no age to go by
            continue
        if age > FORGET_S:
            stale.append(proxy_id)
            continue
        if fresh_s is not None and age > fresh_s:
            continue
        try:
            out[proxy_id] = {
                space: SpaceTraffic(**{k: v for k, v in counts.items() if k in _FIELDS})
                for space, counts in report["spaces"].items()
            }
        except (AttributeError, KeyError, TypeError):
            log.warning("traffic.unreadable_report", proxy=proxy_id)
    if stale:
        client.hdel(PROXIES_KEY, *stale)
    return out


def record_activity(settings: Settings) -> set[str]:
    """Set `last_request_at = now` on each Space the proxy saw traffic for since the last call.

    The last counts live in Redis, so any process may call this and a restart loses nothing.
    Returns the Space ids marked.
    """
    from spaceport.proxy.route_table import take_visited

    client = redis.Redis.from_url(settings.redis_url, socket_timeout=5)
    used = take_visited(client)  # seen by proxies on other machines (proxy/follower.py)
    try:  # (counted even when this node's own proxy does not answer)
        used |= used_since_last_look(settings, client, _SEEN_KEY)
    finally:
        _mark_used(used)
    return used


def _mark_used(used: set[str]) -> None:
    """`last_request_at = now` for these Spaces (the sleep timer's clock)."""
    if used:
        stamp = utcnow()
        with session_scope() as session:
            for space_id in used:
                owner, _, name = space_id.partition("/")
                session.execute(
                    update(Space)
                    .where(Space.owner == owner, Space.name == name)
                    # keep updated_at: traffic is not a change of the Space (lastModified)
                    .values(last_request_at=stamp, updated_at=Space.updated_at)
                )
        log.debug("traffic.active", spaces=sorted(used))
