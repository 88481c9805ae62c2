"""Users and their tokens: create, list, revoke, and their JSON shapes (the native API, the
console's account pages and the CLI's user management build on this)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from spaceport.auth import scopes
from spaceport.auth.sessions import is_session_token
from spaceport.auth.tokens import issue_token
from spaceport.db.models import Organization, Space, Token, User, utcnow
from spaceport.errors import Conflict, Forbidden, SpaceportError
from spaceport.names import check_name
from spaceport.timefmt import iso_seconds


def create_user(
    session: Session, name: str, *, admin: bool = False, token_role: str = "write"
) -> tuple[User, str]:
    """A new user and a first token for them (returned in clear, once)."""
    check_name(name, "user name")
    if session.scalar(select(User).where(User.name == name)) is not None:
        raise Conflict(f"user {name!r} already exists")
    # Users and organizations share one namespace: `name/space` must mean one owner.
    if session.scalar(select(Organization).where(Organization.name == name)) is not None:
        raise Conflict(f"{name!r} is the name of an organization: pick another user name")
    if session.scalar(select(Space.id).where(Space.owner == name).limit(1)) is not None:
        # Spaces left under a name no one holds (an admin made them, or a rename was cut
        # short) are not handed to whoever takes the name next.
        raise Conflict(
            f"Spaces already exist under {name!r}: pick another user name (an administrator "
            "can move those Spaces first)"
        )
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
        "deactivatedAt": iso_seconds(user.deactivated_at),
        "spaces": spaces,
    }


def token_dict(token: Token) -> dict[str, Any]:
    return {
        "id": token.id,
        "name": token.name,
        "role": token.role,
        "kind": "session" if is_session_token(token) else "token",
        "scope": token.scope,
        "createdAt": iso_seconds(token.created_at),
        "expiresAt": iso_seconds(token.expires_at),
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


MAX_TOKEN_DAYS = 3650


def token_expiry(expires_at: date | datetime | None, days: int | None) -> datetime | None:
    """When a new token stops working: a date (the end of that day, UTC) or a number of days
    from now; neither: never. A moment already past is refused, not a dead token made."""
    if expires_at is not None and days is not None:
        raise SpaceportError("give expiresAt or expiresInDays, not both")
    if days is not None:
        if not 1 <= days <= MAX_TOKEN_DAYS:
            raise SpaceportError(f"expiresInDays must be 1 to {MAX_TOKEN_DAYS} (got {days})")
        return utcnow() + timedelta(days=days)
    if expires_at is None:
        return None
    if isinstance(expires_at, datetime):
        moment = expires_at.replace(tzinfo=None) - (expires_at.utcoffset() or timedelta())
    else:
        moment = datetime.combine(expires_at, time(23, 59, 59))
    if moment <= utcnow():
        raise SpaceportError(f"expiresAt must be in the future (got {expires_at.isoformat()})")
    return moment


def check_scope(session: Session, user: User, entries: list[str]) -> list[str]:
    """The entries, normalized, if each names something the user can reach: a Space of their
    own namespace or of an organization they belong to (site admins: any existing namespace).
    A token cannot be given more than its user has."""
    try:
        normalized = scopes.normalize(entries)
    except scopes.InvalidScope as exc:
        raise SpaceportError(str(exc)) from None
    if not normalized:
        raise SpaceportError("scope must name at least one 'space:owner/name' or 'org:name'")
    mine = {user.name, *(m.org.name for m in user.memberships)}
    for entry in normalized:
        kind, _, value = entry.partition(":")
        owner = value.partition("/")[0]
        if (
            kind == "org"
            and session.scalar(select(Organization).where(Organization.name == owner)) is None
        ):
            raise SpaceportError(f"token scope {entry!r}: there is no organization {owner!r}")
        if owner in mine or (user.is_admin and _namespace_exists(session, owner)):
            continue
        raise Forbidden(
            f"token scope {entry!r}: you ({user.name}) can only scope a token to your own "
            "Spaces and to organizations you belong to"
        )
    return normalized


def scope_choices(session: Session, user: User) -> list[str]:
    """Scope entries the user may give a token, for the console's suggestions."""
    orgs = sorted(m.org.name for m in user.memberships)
    owners = [user.name, *orgs]
    rows = session.scalars(select(Space).where(Space.owner.in_(owners)).order_by(Space.id))
    return [f"space:{s.space_id}" for s in rows] + [f"org:{o}" for o in orgs]


def _namespace_exists(session: Session, name: str) -> bool:
    return (
        session.scalar(select(User.id).where(User.name == name)) is not None
        or session.scalar(select(Organization.id).where(Organization.name == name)) is not None
    )


def create_token(
    session: Session,
    user: User,
    name: str,
    role: str,
    *,
    scope: list[str] | None = None,
    expires_at: datetime | None = None,
) -> tuple[Token, str]:
    """A new token for the user and its value (in clear, once: only its digest is stored).
    `scope` (checked by `check_scope`) limits it to named Spaces and organizations."""
    value = issue_token(session, user, name, role, scope=scope, expires_at=expires_at)
    token = session.scalar(select(Token).where(Token.user_id == user.id).order_by(Token.id.desc()))
    assert token is not None
    return token, value


def find_token(session: Session, token_id: int) -> Token | None:
    return session.get(Token, token_id)


def revoke_token(session: Session, token: Token) -> None:
    """The token stops working at once (at the caller's commit), and so do the console
    sessions signed in with it."""
    session.execute(delete(Token).where(Token.signed_in_with == token.id))
    session.delete(token)
