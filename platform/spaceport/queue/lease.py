"""One build per Space at a time, and a heartbeat for every running build.

A new push marks the running build cancelled in the database and queues the new one; the old
build's watchdog kills it within a fraction of a second. With several worker processes the new
build could start before the old one has stopped, so a build first takes its Space's lease: a
Redis lock with a short TTL that its holder renews (a worker that dies lets it expire). The
same renewal refreshes a heartbeat key per build, which the reconciler reads to find builds
whose worker died mid-build (see recovery.py).
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Callable
from types import TracebackType

import redis
from redis.exceptions import LockError, LockNotOwnedError

LEASE_TTL_S = 10
RENEW_EVERY_S = 2.0
POLL_S = 0.25


def lease_key(space_pk: int) -> str:
    return f"spaceport:space:{space_pk}:build-lease"


def heartbeat_key(build_id: int) -> str:
    return f"spaceport:build:{build_id}:alive"


def heartbeat(client: redis.Redis, build_id: int) -> dict[str, object] | None:
    """The heartbeat of a running build ({pid, host, since}), or None when there is none."""
    raw = client.get(heartbeat_key(build_id))
    if raw is None:
        return None
    value: dict[str, object] = json.loads(raw)
    return value


class BuildLease:
    """Hold a Space's build lease while a build (and its deploy) runs."""

    def __init__(
        self, client: redis.Redis, space_pk: int, build_id: int, ttl_s: int = LEASE_TTL_S
    ) -> None:
        self.client, self.build_id, self.ttl_s = client, build_id, ttl_s
        self.lock = client.lock(lease_key(space_pk), timeout=ttl_s, thread_local=False)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.since = time.time()

    def acquire(self, give_up: Callable[[], bool], log: Callable[[str], None]) -> bool:
        """Wait for the lease; False when `give_up()` says so first (the build was superseded)."""
        waiting_said = False
        while not self.lock.acquire(blocking=False):
            if give_up():
                return False
            if not waiting_said:
                log("Waiting for the previous build of this Space to stop ...")
                waiting_said = True
            time.sleep(POLL_S)
        self.beat()
        self._thread = threading.Thread(target=self._renew, name="build-lease", daemon=True)
        self._thread.start()
        return True

    def beat(self) -> None:
        value = {"pid": os.getpid(), "host": socket.gethostname(), "since": self.since}
        self.client.set(heartbeat_key(self.build_id), json.dumps(value), ex=self.ttl_s)

    def _renew(self) -> None:
        while not self._stop.wait(RENEW_EVERY_S):
            try:
                try:
                    self.lock.reacquire()
                except LockNotOwnedError:  # Redis restarted empty: take the lease again
                    self.lock.acquire(blocking=False)
                # The build runs: say so even without the lease, or recovery would build it
                # a second time (recovery.py reads only the heartbeat).
                self.beat()
            except (LockError, redis.RedisError):
                continue  # Redis hiccup: try again; the TTL leaves time for it

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=RENEW_EVERY_S + 1)
        try:
            self.client.delete(heartbeat_key(self.build_id))
            self.lock.release()
        except (LockError, redis.RedisError):
            pass  # expired already: nothing left to release

    def __enter__(self) -> BuildLease:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
