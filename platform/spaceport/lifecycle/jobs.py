"""Run starts, wakes and stops in the background of the API process.

Owner actions answer at once (as Hugging Face's do) and never wait behind image builds in the
Celery queue: a small thread pool here does the work, the per-Space lock keeps it orderly, and
the reconciler finishes anything a crash of this process left half done.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import structlog

from spaceport.settings import Settings

log = structlog.get_logger(__name__)

_pool: ThreadPoolExecutor | None = None
_background: ThreadPoolExecutor | None = None
_lock = threading.Lock()


def _executor(settings: Settings) -> ThreadPoolExecutor:
    global _pool
    with _lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(
                max_workers=max(1, settings.deploy_threads), thread_name_prefix="spaceport-run"
            )
        return _pool


def _report(name: str, future: Future[Any]) -> None:
    exc = future.exception()
    if exc is not None:
        log.error("job.failed", job=name, error=repr(exc), exc_info=exc)


def submit(settings: Settings, name: str, fn: Callable[..., Any], *args: Any) -> Future[Any]:
    future = _executor(settings).submit(fn, *args)
    future.add_done_callback(lambda f: _report(name, f))
    return future


_in_flight: set[str] = set()


def submit_once(settings: Settings, key: str, fn: Callable[..., Any], *args: Any) -> bool:
    """Submit unless a job with the same key is queued or running here; True if submitted."""
    with _lock:
        if key in _in_flight:
            return False
        _in_flight.add(key)

    def run() -> Any:
        try:
            return fn(*args)
        finally:
            with _lock:
                _in_flight.discard(key)

    submit(settings, key, run)
    return True


def _lower_priority() -> None:
    """The background thread yields the CPU to everything else (nice 10, this thread only)."""
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)


def submit_background_once(
    settings: Settings, key: str, fn: Callable[..., Any], *args: Any
) -> bool:
    """Like `submit_once`, on one thread of low CPU priority of its own: housekeeping (memory
    compression) runs one at a time and never queues in front of a start or a wake."""
    global _background
    with _lock:
        if key in _in_flight:
            return False
        _in_flight.add(key)
        if _background is None:
            _background = ThreadPoolExecutor(
                max_workers=1, thread_name_prefix="spaceport-bg", initializer=_lower_priority
            )
        pool = _background

    def run() -> Any:
        try:
            return fn(*args)
        finally:
            with _lock:
                _in_flight.discard(key)

    future = pool.submit(run)
    future.add_done_callback(lambda f: _report(key, f))
    return True
