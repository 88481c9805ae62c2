"""The route table as the control plane publishes it, for proxies on other machines
(`spaceport proxy --follow`, proxy/follower.py): one Redis key holding the whole table and its
digest, and a channel that says it changed. The control plane's own proxy is pushed directly
(lifecycle/proxy_routes.py); every push publishes the same table here first, so every proxy
serves the same routes. Followers also poll the key: a lost message only delays a change.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable

import redis

from spaceport.proxy.base import Route
from spaceport.proxy.nginx import route_from_json, table_json

TABLE_KEY = "spaceport:routes:table"
CHANNEL = "spaceport:routes:changed"
VISITED_KEY = "spaceport:traffic:visited"  # Space ids other proxies saw visitors for


def encode(routes: Iterable[Route]) -> tuple[str, str]:
    """(digest, body) of a table, its body as nginx loads it: the same routes give the same
    digest in any order."""
    body = table_json(routes)
    return hashlib.sha256(body.encode()).hexdigest()[:16], body


def publish(client: redis.Redis, routes: Iterable[Route]) -> str:
    """Store the table and tell the followers; returns its digest."""
    digest, body = encode(routes)
    pipe = client.pipeline(transaction=True)
    pipe.set(TABLE_KEY, f'{{"digest": "{digest}", "table": {body}}}')  # no second encode
    pipe.publish(CHANNEL, digest)
    pipe.execute()
    return digest


def published_digest(client: redis.Redis) -> str | None:
    raw = client.get(TABLE_KEY)
    return str(json.loads(raw)["digest"]) if raw else None


def read(client: redis.Redis) -> tuple[str, list[Route]] | None:
    """The published table (digest, routes), or None before the control plane published one."""
    raw = client.get(TABLE_KEY)
    if raw is None:
        return None
    table = json.loads(raw)
    return str(table["digest"]), [route_from_json(r) for r in table["table"]["routes"]]


def note_visited(client: redis.Redis, space_ids: Iterable[str]) -> None:
    """A follower saw visitors for these Spaces: the control plane's sleep timer counts them
    (proxy/traffic.py), so a Space visited through any proxy stays awake."""
    ids = list(space_ids)
    if ids:
        client.sadd(VISITED_KEY, *ids)


def take_visited(client: redis.Redis) -> set[str]:
    """The Space ids followers noted since the last call (read and cleared at once)."""
    pipe = client.pipeline(transaction=True)
    pipe.smembers(VISITED_KEY)
    pipe.delete(VISITED_KEY)
    members, _ = pipe.execute()
    return {m.decode() if isinstance(m, bytes) else str(m) for m in members}
