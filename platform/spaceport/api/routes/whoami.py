"""`GET /api/whoami-v2`: who the token belongs to, in Hugging Face's shape."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from spaceport.api.deps import Principal, require_principal
from spaceport.services import orgs

router = APIRouter()


@router.get("/api/whoami-v2")
def whoami(who: Principal = Depends(require_principal)) -> dict[str, Any]:
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
        "auth": {
            "type": "access_token",
            "accessToken": {"displayName": who.token_name, "role": who.role},
        },
    }
