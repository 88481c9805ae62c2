"""Native users and tokens: `/api/v1/users` (admins create users) and `/api/v1/tokens`.

Every user manages their own access tokens: read or write, the value shown once at creation
(only its digest is stored), revocable at any time. Console sessions are tokens too (named
"console session ..."), so signing out everywhere is revoking them here.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from spaceport.api.deps import Principal, require_principal
from spaceport.auth.sessions import is_session_token
from spaceport.auth.tokens import issue_token
from spaceport.db.models import Space, Token, User
from spaceport.db.session import get_session
from spaceport.errors import Forbidden, NotFound
from spaceport.services.users import create_user

router = APIRouter(prefix="/api/v1", tags=["native"])


class NewUser(BaseModel):
    name: str = Field(description="User name: letters, digits, '.', '_' or '-'.")
    fullname: str | None = None
    email: str | None = None
    admin: bool = False
    token_role: Literal["read", "write"] = "write"


class NewToken(BaseModel):
    name: str = Field(min_length=1, max_length=100, description="What the token is for.")
    role: Literal["read", "write"] = "read"


def require_write(who: Principal = Depends(require_principal)) -> Principal:
    if who.role != "write":
        raise Forbidden("This token is read-only: use a write token to change users or tokens")
    return who


def require_admin(who: Principal = Depends(require_write)) -> Principal:
    if not who.is_admin:
        raise Forbidden(f"Only an administrator can manage users (you are {who.name})")
    return who


def user_dict(user: User, spaces: int = 0) -> dict[str, Any]:
    return {
        "id": user.id,
        "name": user.name,
        "fullname": user.fullname,
        "email": user.email,
        "isAdmin": user.is_admin,
        "createdAt": user.created_at.isoformat(timespec="seconds") + "Z",
        "spaces": spaces,
    }


def token_dict(token: Token) -> dict[str, Any]:
    return {
        "id": token.id,
        "name": token.name,
        "role": token.role,
        "kind": "session" if is_session_token(token) else "token",
        "createdAt": token.created_at.isoformat(timespec="seconds") + "Z",
        "lastUsedAt": (
            token.last_used_at.isoformat(timespec="seconds") + "Z" if token.last_used_at else None
        ),
    }


@router.get("/users")
def list_users(
    _: Principal = Depends(require_admin), session: Session = Depends(get_session)
) -> list[dict[str, Any]]:
    counts: dict[str, int] = {}
    for owner in session.scalars(select(Space.owner)):
        counts[owner] = counts.get(owner, 0) + 1
    users = session.scalars(select(User).order_by(User.name))
    return [user_dict(u, counts.get(u.name, 0)) for u in users]


@router.post("/users", status_code=201)
def add_user(
    body: NewUser, _: Principal = Depends(require_admin), session: Session = Depends(get_session)
) -> dict[str, Any]:
    """Create a user and their first token (shown once: hand it to them)."""
    user, token = create_user(session, body.name, admin=body.admin, token_role=body.token_role)
    user.fullname, user.email = body.fullname, body.email
    session.commit()
    return {**user_dict(user), "token": token}


@router.get("/tokens")
def list_tokens(
    who: Principal = Depends(require_principal), session: Session = Depends(get_session)
) -> list[dict[str, Any]]:
    """The caller's own tokens (values are never shown again)."""
    rows = session.scalars(select(Token).where(Token.user_id == who.user.id).order_by(Token.id))
    return [token_dict(t) for t in rows]


@router.post("/tokens", status_code=201)
def create_token(
    body: NewToken, who: Principal = Depends(require_write), session: Session = Depends(get_session)
) -> dict[str, Any]:
    """A new token for the caller; its value is in this answer and nowhere else, ever."""
    value = issue_token(session, who.user, body.name.strip(), body.role)
    token = session.scalar(
        select(Token).where(Token.user_id == who.user.id).order_by(Token.id.desc())
    )
    assert token is not None
    session.commit()
    return {**token_dict(token), "token": value}


@router.delete("/tokens/{token_id}")
def revoke_token(
    token_id: int, who: Principal = Depends(require_write), session: Session = Depends(get_session)
) -> dict[str, Any]:
    """Revoke one of the caller's tokens (admins: anyone's); it stops working at once."""
    token = session.get(Token, token_id)
    if token is None or (token.user_id != who.user.id and not who.is_admin):
        raise NotFound(f"No token with id {token_id} among yours: see GET /api/v1/tokens")
    out = token_dict(token)
    session.delete(token)
    session.commit()
    return {"revoked": out}
