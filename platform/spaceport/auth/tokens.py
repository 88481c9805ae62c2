"""Access tokens: random, shown once, stored only as a SHA-256 digest.

Tokens carry 256 bits of randomness, so a fast digest is enough (no password stretching needed)
and lookups stay a single indexed query.
"""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from spaceport.db.models import Token, User, utcnow

TOKEN_PREFIX = "sp_"
ROLES = ("read", "write")


def new_token_value() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def issue_token(
    session: Session, user: User, name: str, role: str = "write", value: str | None = None
) -> str:
    """Create a token for `user`; returns the clear value, which is never stored."""
    if role not in ROLES:
        raise ValueError(f"token role must be one of {', '.join(ROLES)} (got {role!r})")
    value = value or new_token_value()
    session.add(Token(user=user, name=name, token_hash=hash_token(value), role=role))
    session.flush()
    return value


def lookup_token(session: Session, value: str) -> Token | None:
    token = session.scalar(select(Token).where(Token.token_hash == hash_token(value)))
    if token is not None:
        token.last_used_at = utcnow()
    return token
