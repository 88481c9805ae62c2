"""`/api/spaces/{owner}/{name}/...`: Space info, runtime and live logs, in Hugging Face's shapes."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import redis.asyncio as aioredis
from fastapi import APIRouter, Depends
from sqlalchemy.orm import Session
from sse_starlette.sse import EventSourceResponse

# readable_space lives in api/deps.py; routes/embed.py still imports it from here.
from spaceport.api.deps import readable_space
from spaceport.db.models import Space
from spaceport.db.session import get_session
from spaceport.logstream import build_key, entries
from spaceport.services.builds import build_over, latest_build
from spaceport.services.views import runtime_dict, space_dict
from spaceport.settings import get_settings

router = APIRouter()


@router.get("/api/spaces/{owner}/{name}")
def space_info(
    blobs: bool = False,
    space: Space = Depends(readable_space),
    session: Session = Depends(get_session),
) -> dict[str, Any]:
    """huggingface_hub `space_info`; `blobs=true` (files_metadata) adds sizes and blob ids."""
    return space_dict(session, get_settings(), space, files_metadata=blobs)


@router.get("/api/spaces/{owner}/{name}/runtime")
def space_runtime(space: Space = Depends(readable_space)) -> dict[str, Any]:
    return runtime_dict(get_settings(), space)


def _event(ts: str, data: str) -> dict[str, str]:
    return {"data": json.dumps({"timestamp": ts, "data": data})}


@router.get("/api/spaces/{owner}/{name}/logs/build")
async def build_logs(
    space: Space = Depends(readable_space), session: Session = Depends(get_session)
) -> EventSourceResponse:
    """Server-sent events in Hugging Face's shape (`data: {"timestamp", "data"}`): every line
    of the latest build from its start (late joiners replay), then live until it ends."""
    build = latest_build(session, space)
    build_id, stored = (build.id, build.log) if build else (None, "")
    session.close()
    return EventSourceResponse(_follow_build(build_id, stored), ping=15)


async def _follow_build(build_id: int | None, stored: str) -> AsyncIterator[dict[str, str]]:
    """The build's Redis stream from its first entry; the database copy once it expired."""
    if build_id is None:
        return
    client = aioredis.Redis.from_url(get_settings().redis_url)
    key = build_key(build_id)
    try:
        last = "0"
        while True:
            if last == "0" and not await client.exists(key) and build_over(build_id):
                for line in stored.splitlines():  # stream expired: replay the kept copy
                    ts, _, text = line.partition(" ")
                    yield _event(ts, text)
                return
            # Blocks until the worker writes (a queued build's stream does not exist yet), for
            # less than redis-py's 5 s socket timeout.
            batch = entries(await client.xread({key: last}, count=500, block=2000))
            for last, fields in batch:  # noqa: B007 - resume point
                if "end" in fields:
                    return
                yield _event(fields.get("ts", ""), fields.get("data", ""))
    finally:
        await client.aclose()
