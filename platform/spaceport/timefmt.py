"""Timestamps as the APIs write them: UTC (naive datetimes from the database) with a `Z`.

Two formats, on purpose: Hugging Face's routes answer with milliseconds (huggingface_hub parses
them), the native routes, console pages and CLI with whole seconds.
"""

from __future__ import annotations

from datetime import datetime


def iso_hf(value: datetime) -> str:
    """Hugging Face's timestamp format: UTC with milliseconds and a Z."""
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def iso_seconds(value: datetime | None) -> str | None:
    """The native format: UTC to the second with a Z (`2026-01-01T10:00:00Z`); None stays None."""
    return value.isoformat(timespec="seconds") + "Z" if value else None
