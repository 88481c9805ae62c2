"""The production database path: migrations and the core rows on a real PostgreSQL.

`make test` (scripts/test-services.sh) starts PostgreSQL and sets SPACEPORT_TEST_POSTGRES_URL;
each run gets a fresh database so the migrations run from the first one.
"""

from __future__ import annotations

from sqlalchemy import create_engine, inspect, select
from sqlalchemy.orm import Session


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
