"""Sign-up links: `/api/v1/invitations` (site admins, and organization admins for their
organization). The answer to a POST carries the one-time link `{console}/join/{secret}`;
the console's `/join/...` page (console_join.py) turns it into an account."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from spaceport.api.deps import Principal, acting, require_principal, require_write
from spaceport.db.session import get_session
from spaceport.errors import Forbidden
from spaceport.services import audit, invitations
from spaceport.settings import get_settings

router = APIRouter(prefix="/api/v1", tags=["native"])


class NewInvitation(BaseModel):
    org: str | None = Field(default=None, description="The organization they join.")
    role: str | None = Field(
        default=None, description="Their role there: read (default), contributor, write, admin."
    )
    days: int | None = Field(
        default=None, description="How long the link works; default SPACEPORT_INVITATION_DAYS."
    )


def require_inviter(who: Principal = Depends(require_principal)) -> Principal:
    if not invitations.may_manage(who):
        raise Forbidden(
            f"Only administrators and organization admins can invite people (you are {who.name})"
        )
    return who


@router.get("/invitations")
def list_invitations(
    who: Principal = Depends(require_inviter), session: Session = Depends(get_session)
) -> list[dict[str, Any]]:
    """Invitations you may manage (site admins: all), newest first, with their status."""
    return [invitations.as_dict(i) for i in invitations.visible(session, who)]


@router.post("/invitations", status_code=201)
def create_invitation(
    body: NewInvitation,
    who: Principal = Depends(require_write),
    by: audit.Actor = Depends(acting),
    session: Session = Depends(get_session),
) -> dict[str, Any]:
    """A one-time sign-up link (in this answer only): whoever opens it picks a user name,
    gets an account (and joins `org` with `role`), and is signed in."""
    require_inviter(who)
    settings = get_settings()
    invitation, value = invitations.create(
        session, settings, who, org=body.org, role=body.role, days=body.days
    )
    audit.record(
        session,
        by,
        "user.invite",
        namespace=body.org,
        target=f"invitation {invitation.id}",
        org=body.org,
        role=invitation.role,
        expiresAt=invitations.as_dict(invitation)["expiresAt"],
    )
    session.commit()
    return {**invitations.as_dict(invitation), "url": invitations.link(settings, value)}


@router.delete("/invitations/{invitation_id}")
def revoke_invitation(
    invitation_id: int = Path(ge=1, le=2**63 - 1),
    who: Principal = Depends(require_write),
    by: audit.Actor = Depends(acting),
    session: Session = Depends(get_session),
) -> dict[str, Any]:
    """Revoke a link not used yet: it stops working at once."""
    require_inviter(who)
    invitation = invitations.find(session, who, invitation_id)
    out = invitations.as_dict(invitation)
    invitations.revoke(session, invitation)
    audit.record(
        session,
        by,
        "user.invite.revoke",
        namespace=out["org"],
        target=f"invitation {invitation_id}",
    )
    session.commit()
    return {"revoked": out}
