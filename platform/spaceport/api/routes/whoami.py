"""`GET /api/whoami-v2`: who the token belongs to, in Hugging Face's shape."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from sqlalchemy.orm import Session

from spaceport.api.deps import Principal, require_principal
from spaceport.db.models import Token
from spaceport.db.session import get_session
from spaceport.services import orgs
from spaceport.timefmt import iso_seconds

router = APIRouter()

# What a fine-grained token may do within each entity it names, in Hugging Face's words.
PERMISSIONS = {
    "read": ["repo.content.read"],
    "write": ["repo.content.read", "repo.write"],
}


@router.get("/api/whoami-v2")
def whoami(
    who: Principal = Depends(require_principal), session: Session = Depends(get_session)
) -> dict[str, Any]:
    user = who.user
    return {
        "type": "user",
        "id": str(user.id),
        "name": user.name,
        "fullname": user.fullname or user.name,
        "email": user.email,
        "emailVerified": user.email is not None,
        "isPro": False,
        "canPay": False,
        "isAdmin": user.is_admin,
        "avatarUrl": "",
        "orgs": orgs.whoami_orgs(user),
        "auth": {"type": "access_token", "accessToken": access_token(who, session)},
    }


def access_token(who: Principal, session: Session) -> dict[str, Any]:
    """`auth.accessToken`: a scoped token is Hugging Face's role "fineGrained", with the
    entities it reaches (`fineGrained.scoped`) and what it may do there."""
    token = session.get(Token, who.token_id) if who.token_id is not None else None
    out: dict[str, Any] = {"displayName": who.token_name, "role": who.role}
    if token is not None:
        out["createdAt"] = iso_seconds(token.created_at)
        if token.expires_at is not None:
            out["expiresAt"] = iso_seconds(token.expires_at)
    if who.scope is None:
        return out
    scoped = []
    for entry in who.scope:
        kind, _, name = entry.partition(":")
        entity = {"_id": entry, "type": kind, "name": name}
        scoped.append({"entity": entity, "permissions": PERMISSIONS[who.role]})
    out["role"] = "fineGrained"
    out["fineGrained"] = {"canReadGatedRepos": False, "global": [], "scoped": scoped}
    return out
