"""Variables (public env vars) and secrets (env vars encrypted at rest, never returned).

Both reach the app as environment variables at its next start; changing either restarts a
Space that runs, as Hugging Face does. Answers are in huggingface_hub's shapes.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from spaceport.auth.crypto import encrypt
from spaceport.db.models import Space, SpaceVariable
from spaceport.errors import SpaceportError
from spaceport.services.operations import apply_change
from spaceport.settings import Settings

KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,199}$")
MAX_VALUE_BYTES = 64 * 1024


def _iso(row: SpaceVariable) -> str:
    return row.updated_at.isoformat(timespec="milliseconds") + "Z"


def _rows(session: Session, space: Space, secret: bool) -> list[SpaceVariable]:
    return list(
        session.scalars(
            select(SpaceVariable)
            .where(SpaceVariable.space_id == space.id, SpaceVariable.is_secret.is_(secret))
            .order_by(SpaceVariable.key)
        )
    )


def variables(session: Session, space: Space) -> dict[str, dict[str, Any]]:
    return {
        r.key: {"value": r.value or "", "description": r.description, "updatedAt": _iso(r)}
        for r in _rows(session, space, secret=False)
    }


def secrets(session: Session, space: Space) -> dict[str, dict[str, Any]]:
    """Keys and descriptions only: a secret's value never leaves the server."""
    return {
        r.key: {"description": r.description, "updatedAt": _iso(r)}
        for r in _rows(session, space, secret=True)
    }


def check_key(key: str) -> None:
    if not KEY.match(key or ""):
        raise SpaceportError(
            f"invalid key {key!r}: use letters, digits and '_' (not starting with a digit), "
            "as an environment variable name"
        )


def put(
    session: Session,
    settings: Settings,
    space: Space,
    key: str,
    value: str,
    *,
    secret: bool,
    description: str | None = None,
) -> None:
    """Add or replace `key` (a secret replaces a variable of the same name, and back)."""
    check_key(key)
    if len(value.encode()) > MAX_VALUE_BYTES:
        raise SpaceportError(f"the value of {key} is over {MAX_VALUE_BYTES // 1024} KiB")
    row = session.scalar(
        select(SpaceVariable).where(SpaceVariable.space_id == space.id, SpaceVariable.key == key)
    )
    if row is None:
        row = SpaceVariable(space_id=space.id, key=key)
        session.add(row)
    row.is_secret = secret
    row.value = None if secret else value
    row.encrypted_value = encrypt(settings, value) if secret else None
    if description is not None:
        row.description = description
    session.flush()
    apply_change(session, settings, space)


def remove(session: Session, settings: Settings, space: Space, key: str, *, secret: bool) -> None:
    """Delete `key`; deleting a key that is not there changes nothing."""
    row = session.scalar(
        select(SpaceVariable).where(
            SpaceVariable.space_id == space.id,
            SpaceVariable.key == key,
            SpaceVariable.is_secret.is_(secret),
        )
    )
    if row is None:
        return
    session.delete(row)
    session.flush()
    apply_change(session, settings, space)


def set_variable(
    session: Session,
    settings: Settings,
    space: Space,
    key: str,
    value: str,
    description: str | None = None,
) -> None:
    put(session, settings, space, key, value, secret=False, description=description)


def set_secret(
    session: Session,
    settings: Settings,
    space: Space,
    key: str,
    value: str,
    description: str | None = None,
) -> None:
    put(session, settings, space, key, value, secret=True, description=description)


def delete_variable(session: Session, settings: Settings, space: Space, key: str) -> None:
    remove(session, settings, space, key, secret=False)


def delete_secret(session: Session, settings: Settings, space: Space, key: str) -> None:
    remove(session, settings, space, key, secret=True)
