"""The audit log's reading on the production database: filters (an action prefix matches only
whole dotted parts), keyset pages newest first with no entry twice, and time filters."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import Session


def test_filters_and_pages_on_postgres(pg_url: str) -> None:
    from spaceport.db.migrate import upgrade
    from spaceport.db.models import utcnow
    from spaceport.errors import SpaceportError
    from spaceport.services import audit

    upgrade(pg_url)
    engine = create_engine(pg_url)
    alice = audit.Actor("alice", "laptop", "203.0.113.7")
    with Session(engine) as session:
        for action in ("space.create", "space.secret.set", "space.secretive", "space.push"):
            audit.record(session, alice, action, space="lab/demo", key="K")
        audit.record(session, "admin", "user.create", target="alice", admin=False)
        session.commit()

        every = audit.page(session, audit.Filters(), 10).items
        assert [e["action"] for e in every] == [
            "user.create",
            "space.push",
            "space.secretive",
            "space.secret.set",
            "space.create",
        ]
        assert every[1]["namespace"] == "lab" and every[1]["ip"] == "203.0.113.7"
        assert every[1]["token"] == "laptop" and every[1]["details"] == {"key": "K"}

        secret = audit.page(session, audit.Filters(action="space.secret"), 10).items
        assert [e["action"] for e in secret] == ["space.secret.set"]  # not space.secretive
        assert audit.page(session, audit.Filters(actor="admin"), 10).items[0]["target"] == "alice"
        assert len(audit.page(session, audit.Filters(namespace="lab"), 10).items) == 4

        seen, cursor = [], None
        while True:
            found = audit.page(session, audit.Filters(space="lab/demo"), 3, cursor)
            seen += [e["id"] for e in found.items]
            if found.next_cursor is None:
                break
            cursor = found.next_cursor
        assert seen == [e["id"] for e in every[1:]]  # two pages, newest first, none twice

        later = utcnow() + timedelta(minutes=1)
        assert audit.page(session, audit.Filters(since=later), 10).items == []
        assert len(audit.page(session, audit.Filters(until=later), 10).items) == 5
        with pytest.raises(SpaceportError, match="pagination cursor"):
            audit.page(session, audit.Filters(), 10, "not-a-cursor")
    engine.dispose()


def test_times_people_type() -> None:
    from spaceport.db.models import utcnow
    from spaceport.errors import SpaceportError
    from spaceport.services.audit import parse_when

    day = parse_when("2026-12-01")
    assert day is not None and (day.year, day.month, day.day, day.hour) == (2026, 12, 1, 0)
    assert parse_when("2026-12-01T10:00:00+02:00") == parse_when("2026-12-01T08:00:00Z")
    ago = parse_when("24h")
    assert ago is not None and abs((utcnow() - ago) - timedelta(hours=24)) < timedelta(seconds=5)
    assert parse_when("") is None
    with pytest.raises(SpaceportError, match="30m, 24h, 7d"):
        parse_when("last week")
