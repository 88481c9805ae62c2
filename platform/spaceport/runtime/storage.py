"""Persistent storage: one named volume per Space, mounted at /data.

It outlives containers (restarts, rebuilds, sleep) and is removed only with the Space or when
the owner drops the storage tier.
"""

from __future__ import annotations

from spaceport.settings import Settings

TIERS = ("small", "medium", "large")


def volume_prefix(settings: Settings) -> str:
    return f"spaceport-data-{settings.instance}-"


def volume_name(settings: Settings, space_pk: int) -> str:
    return f"{volume_prefix(settings)}{space_pk}"
