"""The production database path: migrations and the core rows on a real PostgreSQL.

CI (.ci/run) starts PostgreSQL and sets SPACEPORT_TEST_POSTGRES_URL; each run gets a fresh
database so the migrations run from the first one.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, inspect, select, text
from sqlalchemy.orm import Session

from tests.conftest import need


@pytest.fixture()
def pg_url() -> Iterator[str]:
    admin_url = os.environ.get("SPACEPORT_TEST_POSTGRES_URL")
    need(admin_url is not None, "PostgreSQL (SPACEPORT_TEST_POSTGRES_URL, set by .ci/run)")
    assert admin_url is not None
    name = f"spaceport_test_{uuid.uuid4().hex[:8]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = admin_url.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_migrations_and_core_rows_on_postgres(pg_url: str) -> None:
    from spaceport.auth.tokens import issue_token, lookup_token
    from spaceport.db.migrate import upgrade
    from spaceport.db.models import Build, Space, User

    upgrade(pg_url)
    upgrade(pg_url)  # idempotent: a second start migrates nothing
    engine = create_engine(pg_url)
    tables = set(inspect(engine).get_table_names())
    assert {"users", "tokens", "spaces", "builds", "deployments", "alembic_version"} <= tables
    with Session(engine) as session:
        user = User(name="alice")
        session.add(user)
        session.flush()
        clear = issue_token(session, user, "laptop")
        space = Space(owner="alice", name="demo", card_data={"emoji": "🚀", "tags": ["x"]})
        session.add(space)
        session.flush()
        session.add(Build(space_id=space.id, commit_sha="a" * 40))
        session.commit()
        token = lookup_token(session, clear)
        assert token is not None and token.user.name == "alice"
        assert token.token_hash != clear  # only the digest is stored
        stored = session.scalar(select(Space).where(Space.name == "demo"))
        assert stored is not None and stored.card_data["emoji"] == "🚀"
    engine.dispose()
