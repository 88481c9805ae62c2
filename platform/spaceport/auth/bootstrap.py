"""First start: create the admin user and its token, as ARCHITECTURE.md fixes it.

The token is `SPACEPORT_ADMIN_TOKEN` when set, else generated, written to
`{data}/admin.token` (mode 0600) and printed once.
"""

from __future__ import annotations

import os

from sqlalchemy import select
from sqlalchemy.orm import Session

from spaceport.auth.tokens import hash_token, issue_token
from spaceport.db.models import Token, User
from spaceport.settings import Settings


def ensure_admin(session: Session, settings: Settings) -> str | None:
    """Create the admin user if missing; returns a newly generated token, else None."""
    user = session.scalar(select(User).where(User.name == settings.admin_user))
    if user is None:
        user = User(name=settings.admin_user, is_admin=True, fullname="Administrator")
        session.add(user)
        session.flush()
    if settings.admin_token:
        digest = hash_token(settings.admin_token)
        if session.scalar(select(Token).where(Token.token_hash == digest)) is None:
            issue_token(
                session, user, "admin (SPACEPORT_ADMIN_TOKEN)", "write", settings.admin_token
            )
        return None
    token_file = settings.data / "admin.token"
    if token_file.exists():
        return None
    value = issue_token(session, user, "admin (generated)", "write")
    fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value + "\n")
    return value
