"""Live log fan-out through Redis streams: builders and runtimes append, SSE readers follow.

A stream per build (and per Space for run logs) keeps every line with its timestamp, so a
late joiner replays from the start and then follows live. An entry with `end` closes it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import redis

MAX_STREAM_LEN = 50_000
STREAM_TTL_S = 7 * 24 * 3600


def build_key(build_id: int) -> str:
    return f"spaceport:build:{build_id}:log"


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class LogWriter:
    """Append lines to a stream; also keeps a size-capped copy for the database."""

    def __init__(self, client: redis.Redis, key: str, max_bytes: int) -> None:
        self.client, self.key, self.max_bytes = client, key, max_bytes
        self.kept: list[str] = []
        self.kept_bytes = 0
        self.truncated = False

    def write(self, line: str) -> None:
        line = line.rstrip("\n")
        ts = now_iso()
        with contextlib.suppress(redis.RedisError):  # the database copy still keeps it
            self.client.xadd(
                self.key, {"ts": ts, "data": line}, maxlen=MAX_STREAM_LEN, approximate=True
            )
        size = len(line) + 1
        if self.kept_bytes + size <= self.max_bytes:
            self.kept.append(f"{ts} {line}")
            self.kept_bytes += size
        elif not self.truncated:
            self.truncated = True
            self.kept.append(f"{ts} [log truncated at {self.max_bytes} bytes]")

    def text(self) -> str:
        return "\n".join(self.kept)

    def close(self, status: str) -> None:
        try:
            self.client.xadd(self.key, {"ts": now_iso(), "end": status})
            self.client.expire(self.key, STREAM_TTL_S)
        except redis.RedisError:
            pass


def last_line(client: redis.Redis, key: str) -> str | None:
    """The newest line of a stream (None: none yet, or it has ended)."""
    newest: Any = client.xrevrange(key, count=1)
    if not newest or not newest[0][1]:
        return None
    fields = {_text(k): _text(v) for k, v in newest[0][1].items()}
    return fields.get("data")


def _text(value: object) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def entries(resp: Any) -> list[tuple[str, dict[str, str]]]:
    """Flatten an XREAD answer for one stream into (entry id, decoded fields)."""
    if not resp:
        return []
    return [
        (_text(entry_id), {_text(k): _text(v) for k, v in fields.items()})
        for entry_id, fields in resp[0][1]
    ]


def follow(
    client: redis.Redis, key: str, block_ms: int = 4000, last_id: str = "0"
) -> Iterator[dict[str, str] | None]:
    """Yield entries ({ts, data} or {ts, end}) from the start, then live; None when idle."""
    while True:
        batch = entries(client.xread({key: last_id}, count=500, block=block_ms))
        if not batch:
            yield None
            continue
        for last_id, fields in batch:  # noqa: B007 - resume point
            yield fields
            if "end" in fields:
                return
