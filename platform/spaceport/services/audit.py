"""The audit log: who changed what, when, and from where, kept in the database.

Every route that changes something calls `record` in the same transaction as the change, so
an action and its entry land together or not at all. Names are copied in (deleting a user or a
Space keeps its history); secrets and variables are recorded by name, never by value.

Reading (`page`, `export`) is newest first, cut by a keyset (the entry's id, which only grows),
so a page never repeats or skips an entry while new ones arrive. Entries are kept: nothing
prunes them (an operator who wants less history deletes rows by date, docs/teams.md).
Action names are dotted and listed, with what each records, in docs/teams.md.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Select, and_, or_, select
from sqlalchemy.orm import Session

from spaceport.auth.principal import Principal
from spaceport.db.models import AuditEvent, utcnow
from spaceport.db.session import session_scope
from spaceport.errors import SpaceportError
from spaceport.timefmt import iso_seconds


@dataclass(frozen=True)
class Actor:
    """Who acts and from where, as plain strings: it outlives the request's session (a push is
    recorded after git has answered, in a session of its own)."""

    name: str | None
    token_name: str | None = None
    ip: str | None = None

    @classmethod
    def of(cls, who: Principal | None, ip: str | None) -> Actor:
        if who is None:
            return cls(None, None, ip)
        return cls(who.name, who.token_name, ip)


def record(
    session: Session,
    who: Actor | Principal | str | None,
    action: str,
    *,
    space: str | None = None,
    namespace: str | None = None,
    target: str | None = None,
    ip: str | None = None,
    **details: Any,
) -> AuditEvent:
    """Add one entry (committed with the caller's transaction).

    `action` is a dotted name (`space.restart`, `org.member.add`, ...); `space` the Space id
    (`owner/name`) it concerns, whose owner becomes `namespace` unless one is given; `who` the
    caller (None: the platform itself, e.g. the sleeper); `details` small JSON-able facts.
    """
    if isinstance(who, Actor):
        actor, token_name, ip = who.name, who.token_name, ip or who.ip
    elif isinstance(who, Principal):
        actor, token_name = who.name, who.token_name
    else:
        actor, token_name = who, None
    if namespace is None and space is not None:
        namespace = space.partition("/")[0]
    event = AuditEvent(
        actor=actor,
        token_name=token_name,
        ip=ip,
        action=action,
        namespace=namespace,
        space=space,
        target=target or space,
        details=details,
    )
    session.add(event)
    return event


# --- reading ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Filters:
    """What to show: each given field narrows the log. `action` matches itself and the actions
    under it (`space.secret` matches `space.secret.set`)."""

    actor: str | None = None
    action: str | None = None
    namespace: str | None = None
    space: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    # With `space`: the ids it had before, each with when it stopped being its id (`former`),
    # and when it took its current id if another Space had it before (`space_since`).
    former: tuple[tuple[str, datetime], ...] = ()
    space_since: datetime | None = None


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    next_cursor: str | None  # None: this was the last page


RELATIVE = re.compile(r"^(\d+)\s*([smhdw])$")
UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_when(value: str | None, name: str = "since") -> datetime | None:
    """A time filter: an ISO date or date-time (UTC), or an age such as `30m`, `24h`, `7d`."""
    if not value:
        return None
    text = value.strip()
    if m := RELATIVE.match(text):
        return utcnow() - timedelta(**{UNITS[m.group(2)]: int(m.group(1))})
    try:
        when = datetime.fromisoformat(text.removesuffix("Z").replace(" ", "T"))
    except ValueError:
        raise SpaceportError(
            f"{name} must be an ISO date or time (2026-12-01, 2026-12-01T10:00:00Z) or an age "
            f"such as 30m, 24h, 7d (got {value!r})"
        ) from None
    if when.tzinfo is not None:  # the database keeps naive UTC
        when = when.astimezone(UTC).replace(tzinfo=None)
    return when


def _query(filters: Filters) -> Select[AuditEvent]:
    q = select(AuditEvent).order_by(AuditEvent.id.desc())
    if filters.actor:
        q = q.where(AuditEvent.actor == filters.actor)
    if filters.action:
        q = q.where(
            or_(
                AuditEvent.action == filters.action,
                AuditEvent.action.startswith(filters.action.rstrip(".") + ".", autoescape=True),
            )
        )
    if filters.namespace:
        q = q.where(AuditEvent.namespace == filters.namespace)
    if filters.space:
        condition = AuditEvent.space == filters.space
        if filters.space_since is not None:
            condition = and_(condition, AuditEvent.at > filters.space_since)
        for old_id, until in filters.former:
            condition = or_(condition, and_(AuditEvent.space == old_id, AuditEvent.at <= until))
        q = q.where(condition)
    if filters.since:
        q = q.where(AuditEvent.at >= filters.since)
    if filters.until:
        q = q.where(AuditEvent.at < filters.until)
    return q


def _encode(event_id: int) -> str:
    return base64.urlsafe_b64encode(f"audit:{event_id}".encode()).decode()


def _decode(cursor: str) -> int:
    try:
        kind, _, value = base64.urlsafe_b64decode(cursor.encode()).decode().partition(":")
        if kind != "audit":
            raise ValueError(kind)
        return int(value)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise SpaceportError(
            f"invalid pagination cursor {cursor!r}: use the Link header's URL"
        ) from None


def page(session: Session, filters: Filters, size: int, cursor: str | None = None) -> Page:
    """At most `size` entries, newest first, older than `cursor` (None: from the newest)."""
    q = _query(filters)
    if cursor:
        q = q.where(AuditEvent.id < _decode(cursor))
    rows = list(session.scalars(q.limit(size + 1)))
    more = len(rows) > size
    rows = rows[:size]
    return Page([to_dict(e) for e in rows], _encode(rows[-1].id) if more and rows else None)


def export(filters: Filters, batch: int = 500) -> Iterator[str]:
    """Every matching entry as JSON lines, newest first, read in batches (each in a short
    session of its own: an export of a large log never holds the database)."""
    cursor: str | None = None
    while True:
        with session_scope() as session:
            found = page(session, filters, batch, cursor)
        for item in found.items:
            yield jsonl(item)
        if found.next_cursor is None:
            return
        cursor = found.next_cursor


def jsonl(item: dict[str, Any]) -> str:
    """One entry as a line of JSON lines."""
    return json.dumps(item, separators=(",", ":")) + "\n"


def to_dict(event: AuditEvent) -> dict[str, Any]:
    """One entry as the API, the JSON lines export and the CLI show it."""
    return {
        "id": event.id,
        "at": iso_seconds(event.at),
        "actor": event.actor,
        "token": event.token_name,
        "ip": event.ip,
        "action": event.action,
        "namespace": event.namespace,
        "space": event.space,
        "target": event.target,
        "details": event.details or {},
    }


def since_born(since: datetime | None, born: datetime) -> datetime:
    """Entries of a name start when its current holder was made: an organization or Space
    made under a name another one had never reads the other's history. (A few seconds of
    slack: the entry of its own creation may be written a moment before its row.)"""
    born = born - timedelta(seconds=5)
    return born if since is None or since < born else since


MAX_RENAMES = 50


def former(session: Session, space_id: str, born: datetime) -> tuple[tuple[str, datetime], ...]:
    """The ids a Space had before its renames and transfers, newest first, each with the
    moment it stopped being its id: its log reads its entries under them up to then (entries
    under an old id after that belong to whatever took the name next)."""
    found: list[tuple[str, datetime]] = []
    current, until = space_id, None
    seen = {space_id}
    while len(found) < MAX_RENAMES:
        q = select(AuditEvent).where(
            AuditEvent.action == "space.move",
            AuditEvent.space == current,
            AuditEvent.target.is_not(None),
            AuditEvent.at >= since_born(None, born),
        )
        if until is not None:
            q = q.where(AuditEvent.at <= until)
        move = session.scalar(q.order_by(AuditEvent.id.desc()).limit(1))
        if move is None or not move.target or move.target in seen:
            break
        current, until = move.target, move.at
        seen.add(current)
        found.append((current, until))
    return tuple(found)


def for_space(
    session: Session,
    space_id: str,
    born: datetime,
    *,
    actor: str | None = None,
    action: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Filters:
    """The filters of one Space's log: its entries under its current id since it took it
    (another Space may have had it and moved away: its entries are not this one's, even a few
    seconds before this one was made), and under its former ids up to each move."""
    moved_away = session.scalar(
        select(AuditEvent.at)
        .where(
            AuditEvent.action == "space.move",
            AuditEvent.target == space_id,
            AuditEvent.space != space_id,
            AuditEvent.at <= born,
        )
        .order_by(AuditEvent.id.desc())
        .limit(1)
    )
    return Filters(
        actor=actor,
        action=action,
        space=space_id,
        since=since_born(since, born),
        until=until,
        former=former(session, space_id, born),
        space_since=moved_away,
    )


def entries_for_org(
    session: Session, org: str, born: datetime, limit: int = 50
) -> list[dict[str, Any]]:
    """The newest entries of an organization's namespace (its console page shows these)."""
    return page(session, Filters(namespace=org, since=born), limit).items


def entries_for_space(
    session: Session, space_id: str, born: datetime, limit: int = 50
) -> list[dict[str, Any]]:
    """The newest entries of one Space (its console page's Activity section)."""
    return page(session, for_space(session, space_id, born), limit).items
