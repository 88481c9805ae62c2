"""One start at a time per Space, across every process (API threads, build workers).

A Redis lock with a short lease that the holder renews while it waits for readiness: a process
killed mid-start frees the Space within `LEASE_S`, so the reconciler can finish the job.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from functools import lru_cache

import redis
from redis.lock import Lock

from spaceport.settings import Settings

LEASE_S = 30


def _key(space_pk: int) -> str:
    return f"spaceport:space:{space_pk}:deploy-lock"


def _client(settings: Settings) -> redis.Redis:
    return _client_for(settings.redis_url)


@lru_cache(maxsize=8)
def _client_for(url: str) -> redis.Redis:
    """One client (one connection pool) per URL: the reconciler asks about every running Space
    each pass, and a new client per question opened a new connection each time."""
    return redis.Redis.from_url(url)


@contextmanager
def space_lock(settings: Settings, space_pk: int, wait_s: float) -> Iterator[Lock | None]:
    """Hold the Space's start lock; yields None when it could not be had within `wait_s`."""
    lock = _client(settings).lock(_key(space_pk), timeout=LEASE_S, blocking_timeout=wait_s)
    if not lock.acquire():
        yield None
        return
    try:
        yield lock
    finally:
        with suppress(redis.exceptions.LockError):  # the lease ran out: nothing to release
            lock.release()


def renew(lock: Lock | None) -> None:
    if lock is not None:
        with suppress(redis.exceptions.LockError):
            lock.extend(LEASE_S, replace_ttl=True)


# How long a queued start counts as under way if its process never runs it (it died): then
# the reconciler's checks treat the Space as they would without it (a crash, a stale start).
QUEUED_S = 90


def _queued_key(space_pk: int) -> str:
    return f"spaceport:space:{space_pk}:start-queued"


def start_queued(settings: Settings, space_pk: int) -> None:
    """A start of the Space waits for a thread to run it (a wake in a storm of wakes waits
    for the API's start threads): `is_locked` says so until `start_running`, so the
    reconciler does not take the stopped container it is about to replace for a crash."""
    _client(settings).set(_queued_key(space_pk), "1", ex=QUEUED_S)


def start_running(settings: Settings, space_pk: int) -> None:
    _client(settings).delete(_queued_key(space_pk))


def is_locked(settings: Settings, space_pk: int) -> bool:
    """A start holds the Space's lock, or is queued to (`start_queued`): one round trip."""
    return bool(_client(settings).exists(_key(space_pk), _queued_key(space_pk)))


def claim(settings: Settings, thing: str, ttl_s: int) -> bool:
    """Take `thing` for `ttl_s` seconds unless someone else has; never released early (a node
    pool's container is taken once: node_pool.py)."""
    return bool(_client(settings).set(f"spaceport:claim:{thing}", "1", nx=True, ex=ttl_s))


def is_claimed(settings: Settings, thing: str) -> bool:
    return bool(_client(settings).exists(f"spaceport:claim:{thing}"))
