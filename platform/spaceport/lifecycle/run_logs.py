"""Run logs: a Space's container output, from the start of the current run, then live.

Follows the Space across restarts: when one container ends, the stream goes on with the next
one (a redeploy, a crash restart, a wake). Secret values are masked in every line.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator

from sqlalchemy import select

from spaceport.db.models import Deployment, Space
from spaceport.db.session import session_scope
from spaceport.engine import make_backend
from spaceport.engine.base import RuntimeBackend, RuntimeBackendError
from spaceport.lifecycle.masking import mask, secret_values
from spaceport.settings import Settings
from spaceport.stages import DeploymentStatus

POLL_S = 0.5
LIVE = (DeploymentStatus.STARTING.value, DeploymentStatus.ACTIVE.value)


def _next_container(
    settings: Settings, space_pk: int, seen: set[str]
) -> tuple[bool, str | None, list[str]]:
    """(Space still exists, its newest live container not yet streamed, its secret values)."""
    with session_scope() as session:
        if session.get(Space, space_pk) is None:
            return False, None, []
        container = session.scalar(
            select(Deployment.container_id)
            .where(
                Deployment.space_id == space_pk,
                Deployment.status.in_(LIVE),
                Deployment.container_id.is_not(None),
            )
            .order_by(Deployment.id.desc())
        )
        if container is None or container in seen:
            return True, None, []
        return True, container, secret_values(session, settings, space_pk)


def _timestamp(raw: str) -> str:
    """Docker's nanosecond RFC 3339 stamp as Hugging Face writes it (milliseconds, Z)."""
    date, _, frac = raw.partition(".")
    millis = (frac.rstrip("Z") + "000")[:3]
    return f"{date}.{millis}Z" if date else raw


async def _container_lines(backend: RuntimeBackend, container: str) -> AsyncIterator[str]:
    """Lines of one container, read by a thread (the docker SDK blocks) and handed over."""
    try:
        stream = await asyncio.to_thread(backend.stream_logs, container)
    except RuntimeBackendError:
        return
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[bytes | None] = asyncio.Queue()

    def pump() -> None:
        try:
            for chunk in stream:
                loop.call_soon_threadsafe(queue.put_nowait, chunk)
        except Exception:
            pass
        finally:
            with contextlib.suppress(RuntimeError):  # the loop is gone: nobody listens
                loop.call_soon_threadsafe(queue.put_nowait, None)

    threading.Thread(target=pump, name="run-logs", daemon=True).start()
    pending = ""
    try:
        while (chunk := await queue.get()) is not None:
            pending += chunk.decode(errors="replace")
            *lines, pending = pending.split("\n")
            for line in lines:
                yield line
        if pending:
            yield pending
    finally:
        with contextlib.suppress(Exception):
            stream.close()


async def follow(settings: Settings, space_pk: int) -> AsyncIterator[tuple[str, str]]:
    """(timestamp, line + newline) pairs until the Space is deleted or the reader leaves."""
    backend = await asyncio.to_thread(make_backend, settings)
    seen: set[str] = set()
    while True:
        exists, container, secrets = await asyncio.to_thread(
            _next_container, settings, space_pk, seen
        )
        if not exists:
            return
        if container is None:
            await asyncio.sleep(POLL_S)
            continue
        seen.add(container)
        async for raw in _container_lines(backend, container):
            stamp, _, text = raw.partition(" ")
            yield _timestamp(stamp), mask(text.rstrip("\r"), secrets) + "\n"
