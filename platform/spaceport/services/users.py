"""Users: create them and give them tokens (console and CLI user management build on this)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from spaceport.auth.tokens import issue_token
from spaceport.db.models import User
from spaceport.errors import Conflict
from spaceport.names import check_name


def create_user(
    session: Session, name: str, *, admin: bool = False, token_role: str = "write"
) -> tuple[User, str]:
    """A new user and a first token for them (returned in clear, once)."""
    check_name(name, "user name")
    if session.scalar(select(User).where(User.name == name)) is not None:
        raise Conflict(f"user {name!r} already exists")
    user = User(name=name, is_admin=admin)
    session.add(user)
    session.flush()
    return user, issue_token(session, user, "first token", token_role)
