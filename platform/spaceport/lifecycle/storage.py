"""Persistent storage: one named volume per Space, mounted at /data.

It outlives containers (restarts, rebuilds, sleep) and is removed only with the Space or when
the owner drops the storage tier.
"""

from __future__ import annotations

from spaceport.settings import Settings

TIERS = ("small", "medium", "large")


def tier_bytes(settings: Settings, tier: str) -> int:
    """The size of a tier's /data (`SPACEPORT_DATA_SIZES`)."""
    return int(settings.data_sizes[tier])


def is_downgrade(current: str | None, wanted: str | None) -> bool:
    """A smaller tier than the Space has: refused (the data may not fit); delete first."""
    if current not in TIERS or wanted not in TIERS:
        return False
    return TIERS.index(wanted) < TIERS.index(current)


def volume_prefix(settings: Settings) -> str:
    return f"spaceport-data-{settings.instance}-"


def volume_name(settings: Settings, space_pk: int) -> str:
    return f"{volume_prefix(settings)}{space_pk}"
