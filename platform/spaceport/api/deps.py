"""Request dependencies: who is calling (token as Bearer or Basic password) and their rights."""

from __future__ import annotations

import base64
import binascii

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from spaceport.auth.principal import Principal
from spaceport.auth.tokens import lookup_token
from spaceport.db.session import get_session
from spaceport.errors import Unauthorized

INVALID_CREDENTIALS = "Invalid credentials in Authorization header"


def _token_from_request(request: Request) -> str | None:
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


def header_principal(request: Request, session: Session = Depends(get_session)) -> Principal | None:
    """The caller the Authorization header names, or None when it names no one.

    A token that is sent but unknown (expired, revoked, mistyped) is a 401 on every route, even
    where anonymous access is allowed, as Hugging Face and GitHub answer: the caller learns at
    once, not at the next write. Every router depends on this (api/app.py).
    """
    value = _token_from_request(request)
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
    return Principal(user=token.user, role=token.role, token_name=token.name)


def require_principal(who: Principal | None = Depends(optional_principal)) -> Principal:
    if who is None:
        raise Unauthorized("Authentication required: send an access token as 'Bearer <token>'")
    return who
