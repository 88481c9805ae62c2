"""Native users and tokens: `/api/v1/users` (admins create users) and `/api/v1/tokens`.

Every user manages their own access tokens: read or write, the value shown once at creation
(only its digest is stored), revocable at any time. Console sessions are tokens too (named
"console session ..."), so signing out everywhere is revoking them here.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from spaceport.api.deps import Principal, acting, require_admin, require_principal, require_write
from spaceport.db.session import get_session
from spaceport.errors import NotFound
from spaceport.services import audit, users
from spaceport.services.users import token_dict, user_dict

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


@router.get("/users")
def list_users(
    _: Principal = Depends(require_admin), session: Session = Depends(get_session)
) -> list[dict[str, Any]]:
    return users.users_with_space_counts(session)


@router.post("/users", status_code=201)
def add_user(
    body: NewUser,
    _: Principal = Depends(require_admin),
    by: audit.Actor = Depends(acting),
    session: Session = Depends(get_session),
) -> dict[str, Any]:
    """Create a user and their first token (shown once: hand it to them)."""
    user, token = users.create_user(
        session, body.name, admin=body.admin, token_role=body.token_role
    )
    user.fullname, user.email = body.fullname, body.email
    audit.record(session, by, "user.create", target=user.name, admin=user.is_admin)
    session.commit()
    return {**user_dict(user), "token": token}


@router.get("/tokens")
def list_tokens(
    who: Principal = Depends(require_principal), session: Session = Depends(get_session)
) -> list[dict[str, Any]]:
    """The caller's own tokens (values are never shown again)."""
    return [token_dict(t) for t in users.tokens_of(session, who.user)]


@router.post("/tokens", status_code=201)
def create_token(
    body: NewToken,
    who: Principal = Depends(require_write),
    by: audit.Actor = Depends(acting),
    session: Session = Depends(get_session),
) -> dict[str, Any]:
    """A new token for the caller; its value is in this answer and nowhere else, ever."""
    token, value = users.create_token(session, who.user, body.name.strip(), body.role)
    audit.record(
        session, by, "token.create", target=who.name, token=token.name, id=token.id, role=token.role
    )
    session.commit()
    return {**token_dict(token), "token": value}


@router.delete("/tokens/{token_id}")
def revoke_token(
    token_id: int = Path(ge=1, le=2**63 - 1),  # a database id: larger ones are no id at all
    who: Principal = Depends(require_write),
    by: audit.Actor = Depends(acting),
    session: Session = Depends(get_session),
) -> dict[str, Any]:
    """Revoke one of the caller's tokens (admins: anyone's); it stops working at once."""
    token = users.find_token(session, token_id)
    if token is None or (token.user_id != who.user.id and not who.is_admin):
        raise NotFound(f"No token with id {token_id} among yours: see GET /api/v1/tokens")
    out = token_dict(token)
    audit.record(session, by, "token.revoke", target=token.user.name, token=token.name, id=token.id)
    users.revoke_token(session, token)
    session.commit()
    return {"revoked": out}
