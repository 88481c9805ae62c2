"""Secrets never leave through logs: their values are replaced before any line is shown."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from spaceport.auth.crypto import decrypt
from spaceport.db.models import SpaceVariable
from spaceport.settings import Settings

MASK = "***"
MIN_LENGTH = 3  # shorter values would mask ordinary words


def secret_values(session: Session, settings: Settings, space_pk: int) -> list[str]:
    rows = session.scalars(
        select(SpaceVariable).where(
            SpaceVariable.space_id == space_pk, SpaceVariable.is_secret.is_(True)
        )
    )
    values = []
    for row in rows:
        if row.encrypted_value is None:
            continue
        try:
            value = decrypt(settings, row.encrypted_value)
        except Exception:
            continue  # a key rotated away: nothing readable to leak either
        if len(value) >= MIN_LENGTH:
            values.append(value)
    return sorted(values, key=len, reverse=True)  # longest first: no partial leftovers


def mask(text: str, values: Iterable[str]) -> str:
    for value in values:
        if value in text:
            text = text.replace(value, MASK)
    return text
