"""Users and their tokens: create, list, revoke, and their JSON shapes (the native API, the
console's account pages and the CLI's user management build on this)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from spaceport.auth.sessions import is_session_token
from spaceport.auth.tokens import issue_token
from spaceport.db.models import Space, Token, User
from spaceport.errors import Conflict
from spaceport.names import check_name
from spaceport.timefmt import iso_seconds


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


def user_dict(user: User, spaces: int = 0) -> dict[str, Any]:
    return {
        "id": user.id,
        "name": user.name,
        "fullname": user.fullname,
        "email": user.email,
        "isAdmin": user.is_admin,
        "createdAt": iso_seconds(user.created_at),
        "spaces": spaces,
    }


def token_dict(token: Token) -> dict[str, Any]:
    return {
        "id": token.id,
        "name": token.name,
        "role": token.role,
        "kind": "session" if is_session_token(token) else "token",
        "createdAt": iso_seconds(token.created_at),
        "lastUsedAt": iso_seconds(token.last_used_at),
    }


def users_with_space_counts(session: Session) -> list[dict[str, Any]]:
    """Every user (by name) with the number of Spaces they own."""
    counts: dict[str, int] = {}
    for owner in session.scalars(select(Space.owner)):
        counts[owner] = counts.get(owner, 0) + 1
    users = session.scalars(select(User).order_by(User.name))
    return [user_dict(u, counts.get(u.name, 0)) for u in users]


def tokens_of(session: Session, user: User) -> list[Token]:
    """The user's tokens, console sessions included, oldest first."""
    return list(session.scalars(select(Token).where(Token.user_id == user.id).order_by(Token.id)))


def create_token(session: Session, user: User, name: str, role: str) -> tuple[Token, str]:
    """A new token for the user and its value (in clear, once: only its digest is stored)."""
    value = issue_token(session, user, name, role)
    token = session.scalar(select(Token).where(Token.user_id == user.id).order_by(Token.id.desc()))
    assert token is not None
    return token, value


def find_token(session: Session, token_id: int) -> Token | None:
    return session.get(Token, token_id)


def revoke_token(session: Session, token: Token) -> None:
    """The token stops working at once (at the caller's commit)."""
    session.delete(token)
