"""The audit log: who changed what, when, and from where, kept in the database.

Every route that changes something calls `record` in the same transaction as the change, so
an action and its entry land together or not at all. Names are copied in (deleting a user or a
Space keeps its history); secrets and variables are recorded by name, never by value.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from spaceport.auth.principal import Principal
from spaceport.db.models import AuditEvent


def record(
    session: Session,
    who: Principal | str | None,
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
    actor = who.name if isinstance(who, Principal) else who
    token_name = who.token_name if isinstance(who, Principal) else None
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
