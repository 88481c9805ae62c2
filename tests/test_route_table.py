"""The route table as published for proxies on other machines (proxy/route_table.py), against
a real Redis: what a follower reads back is what was published, in any order the same digest,
a message on each publish, and the visits followers note are taken once."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis

from spaceport.proxy import route_table
from spaceport.proxy.base import Route
from tests.conftest import REDIS_DB, need, redis_available


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> Iterator[redis.Redis]:
    need(redis_available(), "redis-server on 127.0.0.1:6379")
    prefix = f"spaceport:route-table-test:{uuid.uuid4().hex}"
    for name in ("TABLE_KEY", "CHANNEL", "VISITED_KEY"):
        monkeypatch.setattr(route_table, name, f"{prefix}:{name}")
    c = redis.Redis.from_url(f"redis://127.0.0.1:6379/{REDIS_DB}")
    yield c
    c.delete(*[f"{prefix}:{n}" for n in ("TABLE_KEY", "VISITED_KEY")])


def _routes() -> list[Route]:
    return [
        Route(space_id="alice/a", hosts=("alice-a.localhost",), upstream="10.0.0.2:7860"),
        Route(
            space_id="bob/b",
            hosts=("bob-b.localhost", "b.example.org"),
            upstream="10.0.0.3:8501",
            private=True,
            live=False,
            response_headers=(("x-frame-options", "DENY"),),
        ),
    ]


def test_a_published_table_reads_back_whole_and_says_so(client: redis.Redis) -> None:
    assert route_table.read(client) is None  # nothing published yet: a follower waits
    listener = client.pubsub(ignore_subscribe_messages=True)
    listener.subscribe(route_table.CHANNEL)
    digest = route_table.publish(client, _routes())
    assert route_table.read(client) == (digest, _routes())
    assert route_table.published_digest(client) == digest
    assert route_table.encode(reversed(_routes()))[0] == digest  # order does not matter
    messages = [listener.get_message(timeout=1) for _ in range(3)]  # (its subscribe reads None)
    assert {"data": digest.encode()}.items() <= next(m for m in messages if m).items()
    listener.close()
    changed = route_table.publish(client, _routes()[:1])
    assert changed != digest and route_table.read(client) == (changed, _routes()[:1])


def test_visits_noted_by_followers_are_taken_once(client: redis.Redis) -> None:
    route_table.note_visited(client, ["alice/a", "bob/b"])
    route_table.note_visited(client, ["alice/a"])
    route_table.note_visited(client, [])
    assert route_table.take_visited(client) == {"alice/a", "bob/b"}
    assert route_table.take_visited(client) == set()
