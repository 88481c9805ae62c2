"""Run Alembic migrations programmatically, so every process starts on the current schema."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from spaceport.settings import get_settings

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url or get_settings().db_url)
    return cfg


def upgrade(url: str | None = None) -> None:
    get_settings().ensure_dirs()
    command.upgrade(alembic_config(url), "head")
