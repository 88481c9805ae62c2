"""Request dependencies: who is calling (token as Bearer or Basic password) and their rights."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from spaceport.auth.tokens import lookup_token
from spaceport.db.models import User
from spaceport.db.session import get_session
from spaceport.errors import Unauthorized


@dataclass(frozen=True)
class Principal:
    """The caller: a user and the role of the token they used."""

    user: User
    role: str
    token_name: str

    @property
    def name(self) -> str:
        return self.user.name

    @property
    def is_admin(self) -> bool:
        return self.user.is_admin


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


def optional_principal(
    request: Request, session: Session = Depends(get_session)
) -> Principal | None:
    """The caller, or None when anonymous. A token that is sent but unknown is an error."""
    value = _token_from_request(request)
    if value is None:
        value = getattr(request.state, "session_token", None)
        if value is None:
            return None
    token = lookup_token(session, value)
    if token is None:
        # Hugging Face's exact wording: huggingface_hub matches on it.
        raise Unauthorized("Invalid credentials in Authorization header")
    return Principal(user=token.user, role=token.role, token_name=token.name)


def require_principal(who: Principal | None = Depends(optional_principal)) -> Principal:
    if who is None:
        raise Unauthorized("Authentication required: send an access token as 'Bearer <token>'")
    return who
