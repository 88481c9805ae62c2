"""The JSON shapes of a Space, as Hugging Face's API answers them (huggingface_hub parses these)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from spaceport.db.models import Space
from spaceport.settings import Settings
from spaceport.stages import SERVING, Stage


def runtime_dict(settings: Settings, space: Space) -> dict[str, Any]:
    stage = Stage(space.stage)
    serving = stage in SERVING
    out: dict[str, Any] = {
        "stage": stage.value,
        "hardware": {
            "current": (space.hardware_current or space.hardware_requested) if serving else None,
            "requested": space.hardware_requested,
        },
        "storage": space.storage,
        "gcTimeout": space.sleep_time,
        "replicas": {"current": 1 if serving else 0, "requested": 1},
        "devMode": False,
        "domains": [{"domain": settings.app_host(space.owner, space.name), "stage": "READY"}],
        "volumes": [],
        "sha": space.head_sha,
    }
    if space.error_message:
        out["errorMessage"] = space.error_message
    return out


def space_dict(session: Session, settings: Settings, space: Space) -> dict[str, Any]:
    host = settings.app_url(space.owner, space.name).rstrip("/")
    return {
        "_id": f"space-{space.id}",
        "id": space.space_id,
        "author": space.owner,
        "sha": space.head_sha,
        "lastModified": space.updated_at.isoformat() + "Z",
        "createdAt": space.created_at.isoformat() + "Z",
        "private": space.private,
        "disabled": False,
        "gated": False,
        "likes": 0,
        "sdk": space.sdk,
        "tags": [t for t in [space.sdk] if t],
        "host": host,
        "subdomain": settings.app_host(space.owner, space.name).split(".", 1)[0],
        "cardData": space.card_data or {},
        "runtime": runtime_dict(settings, space),
    }
