"""What the shared-GPU broker tells the rest of the node, kept in Redis: the leases held now,
the queue, and each Space's GPU seconds (per quota period and in total).

The broker writes; the API, the console and the metrics read. A broker restart drops its
connections (every app's call in flight fails and is retried by the visitor), so nothing
here has to survive one except the usage counters.
"""

from __future__ import annotations

import json
import math
import time
from typing import Any

import redis

PREFIX = "spaceport:zerogpu"
NOW = f"{PREFIX}:now"
SECONDS = f"{PREFIX}:seconds"
CALLS = f"{PREFIX}:calls"


def _period_key(space: str, period_s: float, at: float) -> str:
    return f"{PREFIX}:used:{math.floor(at / period_s)}:{space}"


def period_ends(period_s: float, at: float) -> float:
    """When the quota period that contains `at` ends (epoch seconds)."""
    return (math.floor(at / period_s) + 1) * period_s


def used(client: redis.Redis, space: str, period_s: float, at: float | None = None) -> float:
    value = client.get(_period_key(space, period_s, at or time.time()))
    return float(value) if value else 0.0


def record_call(
    client: redis.Redis, space: str, seconds: float, period_s: float, at: float | None = None
) -> None:
    at = at or time.time()
    key = _period_key(space, period_s, at)
    pipe = client.pipeline()
    pipe.incrbyfloat(key, seconds)
    pipe.expire(key, int(period_s * 2) + 60)
    pipe.hincrbyfloat(SECONDS, space, seconds)
    pipe.hincrby(CALLS, space, 1)
    pipe.execute()


def publish(client: redis.Redis, leases: list[dict[str, Any]], queue: list[dict[str, Any]]) -> None:
    client.set(NOW, json.dumps({"at": time.time(), "leases": leases, "queue": queue}))


def snapshot(client: redis.Redis) -> dict[str, Any]:
    """Leases and queue as last published, plus every Space's totals."""
    raw = client.get(NOW)
    now = json.loads(raw) if raw else {"at": None, "leases": [], "queue": []}
    seconds = {_text(k): float(v) for k, v in client.hgetall(SECONDS).items()}
    calls = {_text(k): int(v) for k, v in client.hgetall(CALLS).items()}
    now["usage"] = [
        {"space": s, "gpuSeconds": round(seconds[s], 3), "calls": calls.get(s, 0)}
        for s in sorted(seconds)
    ]
    return now


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
