"""Access tokens: random, shown once, stored only as a SHA-256 digest.

Tokens carry 256 bits of randomness, so a fast digest is enough (no password stretching needed)
and lookups stay a single indexed query.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from spaceport.db.models import Token, User, utcnow

TOKEN_PREFIX = "sp_"
LAST_USE_EVERY = timedelta(minutes=1)  # how fresh a token's "last used" is kept
ROLES = ("read", "write")


def new_token_value() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def issue_token(
    session: Session,
    user: User,
    name: str,
    role: str = "write",
    value: str | None = None,
    *,
    scope: list[str] | None = None,
    expires_at: datetime | None = None,
    signed_in_with: int | None = None,
) -> str:
    """Create a token for `user`; returns the clear value, which is never stored."""
    if role not in ROLES:
        raise ValueError(f"token role must be one of {', '.join(ROLES)} (got {role!r})")
    value = value or new_token_value()
    token = Token(user=user, name=name, token_hash=hash_token(value), role=role)
    token.scope, token.expires_at, token.signed_in_with = scope, expires_at, signed_in_with
    session.add(token)
    session.flush()
    return value


def lookup_token(session: Session, value: str) -> Token | None:
    """The token with this value if it still works: not revoked, not expired, its user active.
    Every way in (API, git, console, private apps) comes through here, so revoking, expiry and
    deactivation take effect on the next request."""
    token = session.scalar(select(Token).where(Token.token_hash == hash_token(value)))
    if token is None or not is_usable(token):
        return None
    now = utcnow()
    if token.last_used_at is None or now - token.last_used_at > LAST_USE_EVERY:
        token.last_used_at = now  # a write at most once a minute per token, not per request
    return token


def is_usable(token: Token) -> bool:
    """Not expired, its user active, and a console session's sign-in token still usable."""
    if token.expires_at is not None and token.expires_at <= utcnow():
        return False
    if token.signed_in_with is not None and (token.source is None or not is_usable(token.source)):
        return False  # signed in with a token since revoked (or expired, or deactivated)
    return token.user.deactivated_at is None
