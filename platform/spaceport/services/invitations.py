"""Sign-up by invitation link: an admin (or an organization's admin, for their organization)
makes a one-time link; whoever opens it picks a user name and gets an account, joins the
organization with the role the link names, and is signed in.

Only the link's digest is stored (as for tokens): the link is shown once, to its maker. A link
works until it is used or its days run out; a used or expired one says so, and who to ask.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from spaceport.auth.principal import Principal
from spaceport.auth.tokens import hash_token
from spaceport.db.models import Invitation, Membership, Organization, User, utcnow
from spaceport.errors import Conflict, Forbidden, NotFound, SpaceportError
from spaceport.services import access, users
from spaceport.settings import Settings
from spaceport.timefmt import iso_seconds

JOIN_PATH = "/join/"
MAX_DAYS = 365


class InvitationUnusable(SpaceportError):
    """A link that is no (longer a) way in: its message says why and who to ask."""

    status_code = 410


def link(settings: Settings, value: str) -> str:
    return f"{settings.url.rstrip('/')}{JOIN_PATH}{value}"


def create(
    session: Session,
    settings: Settings,
    who: Principal,
    *,
    org: str | None = None,
    role: str | None = None,
    days: int | None = None,
) -> tuple[Invitation, str]:
    """A new invitation and its link's secret (in clear, once). Site admins invite anyone,
    with or without an organization; an organization's admins invite to their organization."""
    days = settings.invitation_days if days is None else days
    if not 1 <= days <= MAX_DAYS:
        raise SpaceportError(f"days must be 1 to {MAX_DAYS} (got {days})")
    organization = None
    if org is not None:
        organization = session.scalar(select(Organization).where(Organization.name == org))
        if organization is None:
            raise NotFound(f"No organization named {org!r}")
        refusal = access.org_admin_refusal(org, who)
        if refusal is not None:
            raise Forbidden(refusal)
        role = role or "read"
        if role not in access.ORG_ROLES:
            raise SpaceportError(
                f"role must be one of {', '.join(access.ORG_ROLES)} (got {role!r})"
            )
    else:
        if role is not None:
            raise SpaceportError("a role needs an organization (org) to have it in")
        if not who.is_admin:
            raise Forbidden(
                f"Only an administrator can invite people to the site (you are {who.name}); "
                "an organization's admins invite to their organization (give org)"
            )
        if who.role != "write":
            raise Forbidden("This token is read-only: create a write token to invite people")
    value = secrets.token_urlsafe(24)
    invitation = Invitation(
        token_hash=hash_token(value),
        org=organization,
        role=role,
        created_by=who.name,
        expires_at=utcnow() + timedelta(days=days),
    )
    session.add(invitation)
    session.flush()
    return invitation, value


def status(invitation: Invitation) -> str:
    if invitation.used_at is not None:
        return "used"
    return "expired" if invitation.expires_at <= utcnow() else "pending"


def as_dict(invitation: Invitation) -> dict[str, Any]:
    return {
        "id": invitation.id,
        "org": invitation.org.name if invitation.org else None,
        "role": invitation.role,
        "createdBy": invitation.created_by,
        "createdAt": iso_seconds(invitation.created_at),
        "expiresAt": iso_seconds(invitation.expires_at),
        "status": status(invitation),
        "usedAt": iso_seconds(invitation.used_at),
        "usedBy": invitation.used_by,
    }


def may_manage(who: Principal) -> bool:
    """Site admins and the admins of some organization may invite (and see their invites)."""
    return who.is_admin or "admin" in who.orgs.values()


def visible(session: Session, who: Principal) -> list[Invitation]:
    """Every invitation for site admins; an organization admin's: those to their orgs."""
    rows = session.scalars(select(Invitation).order_by(Invitation.id.desc()))
    if who.is_admin:
        return list(rows)
    mine = {org for org, role in who.orgs.items() if role == "admin" and who.reaches(org)}
    return [i for i in rows if i.org is not None and i.org.name in mine]


def find(session: Session, who: Principal, invitation_id: int) -> Invitation:
    for invitation in visible(session, who):
        if invitation.id == invitation_id:
            return invitation
    raise NotFound(f"No invitation {invitation_id} among those you may manage")


def revoke(session: Session, invitation: Invitation) -> None:
    """The link stops working; a used one stays as the record of who joined through it."""
    if invitation.used_at is not None:
        raise Conflict(f"Invitation {invitation.id} was already used by {invitation.used_by}")
    session.delete(invitation)


def usable(session: Session, value: str) -> Invitation:
    """The invitation behind a link, if it still works; else why not (InvitationUnusable)."""
    invitation = session.scalar(
        select(Invitation).where(Invitation.token_hash == hash_token(value))
    )
    if invitation is None:
        raise InvitationUnusable(
            "This invitation link is not valid: it may have been revoked or mistyped. "
            "Ask whoever invited you for a new one."
        )
    if invitation.used_at is not None:
        raise InvitationUnusable(
            f"This invitation link was already used (on {invitation.used_at:%Y-%m-%d}): each "
            f"link works once. Sign in with your token, or ask {invitation.created_by} for a "
            "new link."
        )
    if invitation.expires_at <= utcnow():
        raise InvitationUnusable(
            f"This invitation link expired on {invitation.expires_at:%Y-%m-%d %H:%M} UTC. "
            f"Ask {invitation.created_by} for a new one."
        )
    if not _inviter_may_still(session, invitation):
        raise InvitationUnusable(
            f"This invitation link no longer works: {invitation.created_by}, who made it, may "
            "no longer invite people there. Ask an administrator for a new one."
        )
    return invitation


def _inviter_may_still(session: Session, invitation: Invitation) -> bool:
    """A link is worth what its maker may do now: an inviter who was deactivated, deleted,
    or is no longer an admin (of the site, or of the organization) invites no one."""
    maker = session.scalar(select(User).where(User.name == invitation.created_by))
    if maker is None or maker.deactivated_at is not None:
        return False
    if maker.is_admin:
        return True
    if invitation.org is None:
        return False
    return any(m.org_id == invitation.org.id and m.role == "admin" for m in maker.memberships)


def accept(
    session: Session,
    invitation: Invitation,
    name: str,
    *,
    fullname: str | None = None,
    email: str | None = None,
) -> tuple[User, str]:
    """Make the invitee's account (and membership), mark the link used; returns the user and
    their first token, in clear, once."""
    # Mark it used first, only if still unused: two sign-ups racing on one link make one user.
    claimed = session.execute(
        update(Invitation)
        .where(Invitation.id == invitation.id, Invitation.used_at.is_(None))
        .values(used_at=utcnow(), used_by=name)
    )
    if getattr(claimed, "rowcount", 1) != 1:
        raise InvitationUnusable("This invitation link was just used: each link works once.")
    user, token = users.create_user(session, name)
    user.fullname, user.email = fullname or None, email or None
    if invitation.org is not None:
        session.add(Membership(org=invitation.org, user=user, role=invitation.role or "read"))
    session.flush()
    session.refresh(invitation)
    return user, token
