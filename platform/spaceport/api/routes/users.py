"""Native users and tokens: `/api/v1/users` (admins create users) and `/api/v1/tokens`.

Every user manages their own access tokens: read or write, the value shown once at creation
(only its digest is stored), revocable at any time. Console sessions are tokens too (named
"console session ..."), so signing out everywhere is revoking them here.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from spaceport.api.deps import (
    Principal,
    acting,
    require_admin,
    require_principal,
    require_write,
)
from spaceport.api.errors import error_response
from spaceport.db.session import get_session
from spaceport.errors import Forbidden, NotFound
from spaceport.services import accounts, app_visits, audit, users
from spaceport.services.users import token_dict, user_dict
from spaceport.settings import get_settings

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
    scope: list[str] | None = Field(
        default=None,
        description="Fine-grained: only these 'space:owner/name' and 'org:name' entries "
        "(your own Spaces, organizations you belong to); none: all you can reach.",
    )
    expires_at: date | datetime | None = Field(
        default=None, alias="expiresAt", description="Last day (UTC) the token works."
    )
    expires_in_days: int | None = Field(
        default=None, alias="expiresInDays", description="Or: it works this many days."
    )


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
    """A new token for the caller; its value is in this answer and nowhere else, ever.
    A fine-grained one (`scope`) reaches only the Spaces and organizations it names."""
    scope = users.check_scope(session, who.user, body.scope) if body.scope is not None else None
    if who.scope is not None:  # a scoped token cannot mint a wider one
        scope = scope or list(who.scope)
        if any(e not in who.scope for e in scope):
            raise Forbidden(f"This token is limited to {', '.join(who.scope)}: so is a new one")
    expires_at = users.token_expiry(body.expires_at, body.expires_in_days)
    if who.expires_at is not None and (expires_at is None or expires_at > who.expires_at):
        # a token that expires cannot mint one that outlives it
        expires_at = who.expires_at
    token, value = users.create_token(
        session, who.user, body.name.strip(), body.role, scope=scope, expires_at=expires_at
    )
    audit.record(
        session,
        by,
        "token.create",
        target=who.name,
        token=token.name,
        id=token.id,
        role=token.role,
        scope=scope,
        expiresAt=token_dict(token)["expiresAt"],
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
    """Revoke one of the caller's tokens (admins: anyone's); it stops working at once: API,
    git, console sessions and the private-app cookies signed in through it."""
    token = users.find_token(session, token_id)
    if token is None or (token.user_id != who.user.id and not who.is_admin):
        raise NotFound(f"No token with id {token_id} among yours: see GET /api/v1/tokens")
    if who.scope is not None and token.id != who.token_id:
        raise Forbidden(
            f"This token is limited to {', '.join(who.scope)}: it may revoke itself, not the "
            "account's other tokens"
        )
    out = token_dict(token)
    audit.record(session, by, "token.revoke", target=token.user.name, token=token.name, id=token.id)
    users.revoke_token(session, token)
    session.commit()
    app_visits.credentials_changed()
    return {"revoked": out}


@router.post("/users/{name}/deactivate")
def deactivate_user(
    name: str,
    who: Principal = Depends(require_admin),
    by: audit.Actor = Depends(acting),
    session: Session = Depends(get_session),
) -> dict[str, Any]:
    """Stop a user at once: their tokens, console sessions and private-app cookies no longer
    work. Their Spaces keep running; `activate` undoes it."""
    user = accounts.find_user(session, name)
    accounts.deactivate(session, user, who)
    audit.record(session, by, "user.deactivate", target=name)
    session.commit()
    app_visits.credentials_changed()
    return user_dict(user)


@router.post("/users/{name}/activate")
def activate_user(
    name: str,
    who: Principal = Depends(require_admin),
    by: audit.Actor = Depends(acting),
    session: Session = Depends(get_session),
) -> dict[str, Any]:
    """Let a deactivated user back in: the tokens they had work again."""
    user = accounts.find_user(session, name)
    accounts.activate(user)
    audit.record(session, by, "user.activate", target=name)
    session.commit()
    app_visits.credentials_changed()  # the app hosts' cache may hold a "no" for them
    return user_dict(user)


@router.delete("/users/{name}", responses={409: {"description": "Their Spaces need a place"}})
def delete_user(
    name: str,
    transfer_to: str | None = Query(
        None, alias="transferTo", description="A user or organization to give their Spaces to."
    ),
    delete_spaces: str | None = Query(
        None, alias="deleteSpaces", description="The user's name: confirms deleting their Spaces."
    ),
    who: Principal = Depends(require_admin),
    by: audit.Actor = Depends(acting),
    session: Session = Depends(get_session),
) -> Any:
    """Delete a user. Owning Spaces, they go to `transferTo` or are deleted with
    `deleteSpaces=<their name>`; with neither: 409 listing them, and nothing changes."""
    user = accounts.find_user(session, name)
    try:
        done = accounts.delete(
            session, get_settings(), user, who, transfer_to=transfer_to, delete_spaces=delete_spaces
        )
    except accounts.SpacesWouldBeLost as exc:
        return error_response(exc.status_code, str(exc), spaces=exc.spaces)
    audit.record(
        session,
        by,
        "user.delete",
        target=name,
        movedTo=transfer_to,
        moved=done.moved,
        deleted=done.deleted,
    )
    session.commit()
    app_visits.credentials_changed()
    return {"deleted": name, "moved": done.moved, "deletedSpaces": done.deleted}
