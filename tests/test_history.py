"""The graphs' history store (services/history.py) against a real Redis: it stays bounded
however long it samples, downsamples without losing counts, and forgets deleted Spaces."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
import redis

from spaceport.proxy.base import SpaceTraffic
from spaceport.services import history
from tests.conftest import REDIS_DB, need, redis_available


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> Iterator[redis.Redis]:
    """A namespace of its own in the test Redis database (the node's sampler uses the real one)."""
    need(redis_available(), "redis-server on 127.0.0.1:6379")
    prefix = f"spaceport:history-test:{uuid.uuid4().hex}"
    monkeypatch.setattr(history, "PREFIX", prefix)
    monkeypatch.setattr(history, "LAST", f"{prefix}:last")
    c = redis.Redis.from_url(f"redis://127.0.0.1:6379/{REDIS_DB}")
    yield c
    keys = list(c.scan_iter(f"{prefix}:*"))
    if keys:
        c.delete(*keys)


def test_the_store_stays_bounded_and_downsamples_without_losing_counts(
    client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(history, "COARSE_POINTS", 50)  # reach the week's bound sooner
    spaces = ["alice/a", "bob/b", "carol/c"]
    slots = history.FINE_POINTS + 300
    for slot in range(slots):
        points = {s: _point(slot * 60, req=i + 1) for i, s in enumerate(spaces)}
        history.record(client, points, 60)

    keys = sorted(k.decode() for k in client.scan_iter(f"{history.PREFIX}:*"))
    assert len(keys) == 2 * len(spaces)  # a fine and a coarse list per series, nothing else
    for s in spaces:
        assert client.llen(history.key("fine", s)) == history.FINE_POINTS
        assert client.llen(history.key("coarse", s)) == 50
    # A coarse point holds its ten fine points' counts: bob/b had 2 requests a minute.
    coarse = client.lrange(history.key("coarse", "bob/b"), 0, 1)
    newest, full = (history.decode("bob/b", p) for p in coarse)
    assert full["req"] == 2 * history.COARSE_FACTOR
    assert full["t"] % (60 * history.COARSE_FACTOR) == 0
    assert newest["t"] == (slots - 1) * 60 - (slots - 1) * 60 % 600
    assert full["lat"] == 12.5 and full["mem"] == 1000 + (full["t"] // 60 + 9)  # mean, peak

    # A deleted Space's lists and readings go with it.
    client.hset(history.LAST, mapping={s: "{}" for s in spaces})
    assert history.forget(client, {"alice/a", "bob/b"}) == ["carol/c"]
    assert not client.exists(history.key("fine", "carol/c"), history.key("coarse", "carol/c"))
    assert client.exists(history.key("fine", "alice/a"))


def _point(t: int, req: int) -> dict[str, object]:
    return {"t": t, "req": req, "err": 0, "lat": 12.5, "cpu": 0.5, "mem": 1000 + t // 60,
            "stage": "RUNNING"}  # fmt: skip


def test_a_point_is_the_growth_since_the_last_slot_and_survives_a_proxy_restart() -> None:
    first, readings = history.space_point(
        60, SpaceTraffic(requests=10, duration_count=10, duration_sum=1.0), 5.0, 10, "RUNNING", {}
    )
    assert (first["req"], first["cpu"], first["lat"]) == (0, None, None)  # nothing to compare
    later, _ = history.space_point(
        120,
        SpaceTraffic(requests=25, errors=1, duration_count=25, duration_sum=2.5),
        35.0,
        20,
        "RUNNING",
        json.loads(json.dumps(readings)),
    )
    assert later["req"] == 15 and later["err"] == 1
    assert later["lat"] == 100.0  # 1.5 s over 15 requests
    assert later["cpu"] == 0.5  # 30 CPU seconds in 60 s: half a core
    restarted, _ = history.space_point(
        180, SpaceTraffic(requests=3), 1.0, 20, "RUNNING", readings | {"t": 120, "cpu": 35.0}
    )
    assert restarted["req"] == 3  # the proxy counts from zero again: its 3 requests count


def test_a_space_new_since_the_last_slot_counts_its_first_requests() -> None:
    """Created, built and visited between two slots (a busy reconciler): its visits show; after
    Redis lost every reading (no node readings either) the counters are compared from then."""
    traffic = SpaceTraffic(requests=7, duration_count=7, duration_sum=0.7)
    sampled = {history.NODE: {"busy": 1.0, "idle": 1.0}, "alice/old": {"req": 3}}
    new, _ = history.space_point(
        60, traffic, None, 10, "RUNNING", history.readings_before(sampled, "bob/new")
    )
    assert (new["req"], new["lat"]) == (7, 100.0)
    lost, _ = history.space_point(
        60, traffic, None, 10, "RUNNING", history.readings_before({}, "bob/new")
    )
    assert lost["req"] == 0


def test_proxies_on_other_machines_add_their_own_growth() -> None:
    """Each follower's counters are compared with its own last reading: one restarting (its
    counts from zero again) or falling silent for a while adds no spike; one seen for the
    first time counts from the next slot, unless it had reported at the last slot (then the
    Space is new to it: from zero); the node proxy's growth is added to theirs."""
    a, b = "edge-a:80", "edge-b:80"
    first, readings = history.space_point(
        60, SpaceTraffic(requests=10), None, None, "RUNNING", {"req": 0},
        {a: SpaceTraffic(requests=100, duration_count=100, duration_sum=10.0)}, known=(),
    )  # fmt: skip
    assert first["req"] == 10  # edge-a's 100 may be a day's: not this minute's
    second, readings = history.space_point(
        120, SpaceTraffic(requests=12), None, None, "RUNNING", json.loads(json.dumps(readings)),
        {a: SpaceTraffic(requests=150, duration_count=150, duration_sum=15.0),
         b: SpaceTraffic(requests=5, duration_count=5, duration_sum=0.5)},
        known=(a, b),
    )  # fmt: skip
    assert second["req"] == 2 + 50 + 5  # edge-b reported before: the Space is new to it
    assert second["lat"] == 100.0  # 5.5 s over 55 timed requests
    silent, readings = history.space_point(
        180, SpaceTraffic(requests=12), None, None, "RUNNING", readings,
        {a: SpaceTraffic(requests=150), b: SpaceTraffic(requests=6)}, known=(a, b),
    )  # fmt: skip
    assert silent["req"] == 1  # edge-a silent (its last report again): no growth
    back, readings = history.space_point(
        240, SpaceTraffic(requests=12), None, None, "RUNNING", readings,
        {a: SpaceTraffic(requests=160), b: SpaceTraffic(requests=2)}, known=(a, b),
    )  # fmt: skip
    assert back["req"] == 10 + 2  # edge-a's 10 since; edge-b restarted: its 2
    gone, readings = history.space_point(
        300, SpaceTraffic(requests=12), None, None, "RUNNING", readings,
        {b: SpaceTraffic(requests=3)}, known=(a, b),
    )  # fmt: skip
    assert gone["req"] == 1 and set(readings["f"]) == {b}  # edge-a forgotten: its reading too


def test_followers_counters_reach_the_metrics_while_they_report(
    client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    from spaceport.proxy import traffic

    key = f"spaceport:traffic-test:{uuid.uuid4().hex}"
    monkeypatch.setattr(traffic, "PROXIES_KEY", key)
    traffic.publish_counts(client, "edge-a:80", {"alice/app": SpaceTraffic(requests=4)})
    traffic.publish_counts(client, "edge-b:80", {"alice/app": SpaceTraffic(requests=1)})
    fresh = traffic.followers_traffic(client)
    assert {p: c["alice/app"].requests for p, c in fresh.items()} == {
        "edge-a:80": 4,
        "edge-b:80": 1,
    }
    text = traffic.render_prometheus({"alice/app": SpaceTraffic(requests=2)}, fresh)
    assert 'spaceport_space_requests_total{space="alice/app"} 2' in text
    assert 'spaceport_space_requests_total{space="alice/app",proxy="edge-a:80"} 4' in text
    assert text.count("# TYPE spaceport_space_requests_total counter") == 1
    later = traffic.redis_now(client) + traffic.FRESH_S + 1
    assert traffic.followers_traffic(client, now=later) == {}  # silent: out of the metrics
    assert set(traffic.followers_traffic(client, fresh_s=None, now=later)) == set(fresh)
    gone = traffic.redis_now(client) + traffic.FORGET_S + 1
    assert traffic.followers_traffic(client, fresh_s=None, now=gone) == {}
    assert not client.exists(key)  # forgotten
