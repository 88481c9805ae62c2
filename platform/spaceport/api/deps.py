"""Request dependencies: who is calling (token as Bearer or Basic password) and their rights.

What several route modules share lives here: the caller (`optional_principal`,
`require_principal`, the console's `console_principal`), the Space a request names if the caller
may read or change it (`readable_space`, `writable_space`), and the write and admin checks.
"""

from __future__ import annotations

import base64
import binascii

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from spaceport.auth.principal import Principal, principal_of
from spaceport.auth.sessions import session_expired
from spaceport.auth.tokens import lookup_token
from spaceport.db.models import Space
from spaceport.db.session import get_session
from spaceport.errors import Forbidden, RepoNotFound, Unauthorized
from spaceport.services import access, audit, spaces

INVALID_CREDENTIALS = "Invalid credentials in Authorization header"


def token_from_request(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value:
        return value.strip()
    if scheme.lower() == "basic" and value:
        try:
            decoded = base64.b64decode(value.strip()).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[2] or None
    return None


def client_address(request: Request) -> str:
    """Where the request came from (the proxy passes the client's address on): the audit log's
    "from where" and the login throttle's key. An IPv4 client of a dual-stack listener reads as
    itself (`127.0.0.1`, not `::ffff:127.0.0.1`)."""
    host = request.client.host if request.client else "unknown"
    return host.removeprefix("::ffff:") if "." in host else host


def header_principal(request: Request, session: Session = Depends(get_session)) -> Principal | None:
    """The caller the Authorization header names, or None when it names no one.

    A token that is sent but unknown (expired, revoked, mistyped) is a 401 on every route, even
    where anonymous access is allowed, as Hugging Face and GitHub answer: the caller learns at
    once, not at the next write. Every router depends on this (api/app.py).
    """
    value = token_from_request(request)
    if value is None:
        return None
    return _principal(session, value)


def optional_principal(
    request: Request,
    from_header: Principal | None = Depends(header_principal),
    session: Session = Depends(get_session),
) -> Principal | None:
    """The caller (Authorization header, else the console's session cookie), or None."""
    if from_header is not None:
        return from_header
    value = getattr(request.state, "session_token", None)
    if value is None:
        return None
    return _principal(session, value)


def _principal(session: Session, value: str) -> Principal:
    token = lookup_token(session, value)
    if token is None:
        # Hugging Face's exact wording: huggingface_hub matches on it.
        raise Unauthorized(INVALID_CREDENTIALS)
    return principal_of(token)


def require_principal(who: Principal | None = Depends(optional_principal)) -> Principal:
    if who is None:
        raise Unauthorized("Authentication required: send an access token as 'Bearer <token>'")
    return who


def acting(request: Request, who: Principal | None = Depends(optional_principal)) -> audit.Actor:
    """Who acts and from where: what an audit entry (services/audit.py) records."""
    return audit.Actor.of(who, client_address(request))


def require_write(who: Principal = Depends(require_principal)) -> Principal:
    if who.role != "write":
        raise Forbidden("This token is read-only: use a write token to change users or tokens")
    return who


def require_admin(who: Principal = Depends(require_write)) -> Principal:
    if not who.is_admin:
        raise Forbidden(f"Only an administrator can manage users (you are {who.name})")
    return who


def readable_space(
    owner: str,
    name: str,
    who: Principal | None = Depends(optional_principal),
    session: Session = Depends(get_session),
) -> Space:
    """The Space if the caller may see it; private Spaces are 404 to others (not 403)."""
    space = spaces.find_space(session, owner, name)
    if space is None or not access.can_read(space, who):
        raise RepoNotFound(f"Repository not found: {owner}/{name}")
    return space


def writable_space(
    space: Space = Depends(readable_space), who: Principal = Depends(require_principal)
) -> Space:
    """The Space if the caller's token may change it (403 says why not)."""
    refusal = access.write_refusal(space, who)
    if refusal is not None:
        raise Forbidden(refusal)
    return space


def console_principal(
    request: Request, session: Session = Depends(get_session)
) -> Principal | None:
    """The signed-in user of a console page (session cookie), or None: a stale cookie is dropped."""
    value = getattr(request.state, "session_token", None) or getattr(
        request.state, "session_token_unverified", None
    )
    if not value:
        return None
    token = lookup_token(session, value)
    if token is None or session_expired(token):
        request.state.drop_session_cookie = True
        return None
    request.state.session_token_id = token.id
    return principal_of(token)
