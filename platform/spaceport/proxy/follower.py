"""A proxy on another machine that serves the control plane's route table
(`spaceport proxy --follow`): more than one entry point in front of the same Spaces (behind a
load balancer, or one per site), each able to serve every Space.

It runs its own nginx (its data dir, its listen address) and needs Redis and the API's address
only, no database: it loads the table the control plane publishes (proxy/route_table.py) when
told it changed and every `POLL_S` in case a message was lost, and notes the Spaces its
visitors used, which the control plane's sleep timer counts like its own proxy's, and its
counters, which the metrics and graphs show with the node proxy's. With Redis
away it keeps serving the last table it loaded (nginx keeps it on disk across restarts too).
Status pages, wakes and private Spaces' checks go to the API as from the node's own proxy.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable

import redis
import structlog

from spaceport.proxy import make_proxy, proxy_process
from spaceport.proxy.base import ProxyError
from spaceport.proxy.route_table import CHANNEL, note_visited, read
from spaceport.proxy.traffic import publish_counts, used_in
from spaceport.settings import Settings

log = structlog.get_logger(__name__)

POLL_S = 5.0  # the table is read this often even without a message
TRAFFIC_S = 2.0  # visitors are reported this often (the reconciler's pace)
RETRY_S = 2.0


def follower_id(settings: Settings) -> str:
    """This follower's name in the counts it reports: its machine and address, and an id its
    data dir keeps (containers of one image may share a hostname and an address; a restart
    keeps the name, so its series go on)."""
    path = settings.data / "proxy.id"
    if not path.exists():  # written whole, then linked: a follower starting beside it reads it
        path.parent.mkdir(parents=True, exist_ok=True)
        made = path.with_name(f"proxy.id.{uuid.uuid4().hex}")
        made.write_text(uuid.uuid4().hex[:8])
        try:
            os.link(made, path)
        except FileExistsError:
            pass
        except OSError:  # a filesystem without hard links: renamed, last writer wins
            made.replace(path)
        made.unlink(missing_ok=True)
    return f"{socket.gethostname()}:{settings.listen}:{path.read_text().strip()}"


def follow(
    settings: Settings, say: Callable[[str], None], stop: threading.Event | None = None
) -> None:
    """Start this machine's nginx and keep its routes the published table's until `stop`."""
    stop = stop or threading.Event()
    # TLS is terminated in front of a follower: nothing pushes certificates to it.
    settings = settings.model_copy(update={"tls_termination": "front"})
    process = proxy_process(settings)
    asyncio.run(process.start())
    say(f"proxy on {settings.listen}, following the route table in {settings.redis_url}")
    proxy = make_proxy(settings)
    proxy_id = follower_id(settings)
    seen_key = f"spaceport:traffic:seen:{proxy_id}"
    applied: str | None = None
    while not stop.is_set():
        client = redis.Redis.from_url(settings.redis_url, socket_timeout=5)
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        try:
            pubsub.subscribe(CHANNEL)
            next_poll = next_traffic = 0.0
            while not stop.is_set():
                message = pubsub.get_message(timeout=0.5)
                now = time.monotonic()
                if message is not None or now >= next_poll:
                    next_poll = now + POLL_S
                    table = read(client)
                    if table is not None and table[0] != applied:
                        asyncio.run(proxy.set_routes(table[1]))
                        applied = table[0]
                        log.info("follower.loaded", routes=len(table[1]), digest=applied)
                if now >= next_traffic:
                    next_traffic = now + TRAFFIC_S
                    traffic = asyncio.run(proxy.traffic())
                    note_visited(client, used_in(client, seen_key, traffic))
                    publish_counts(client, proxy_id, traffic)  # (the metrics and graphs)
        except Exception as exc:  # Redis away, nginx gone, a bad table: serve on, retry
            log.warning("follower.retrying", error=repr(exc)[:300])
            if isinstance(exc, ProxyError) and not process.is_running():
                with contextlib.suppress(Exception):
                    asyncio.run(process.start())  # it loads the last table from its disk
                applied = None  # and the published one is pushed again
            stop.wait(RETRY_S)
        finally:
            with contextlib.suppress(Exception):
                pubsub.close()
                client.close()
