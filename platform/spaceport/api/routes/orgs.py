"""Organizations over HTTP: the native `/api/v1/orgs` routes and Hugging Face's
`/api/organizations/{org}/overview|members` that `HfApi` calls.

Any user may create an organization (they become its admin); its admins rename or delete it
and manage members; its members see it. Every change goes to the audit log.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from spaceport.api.deps import (
    Principal,
    acting,
    optional_principal,
    require_principal,
    require_write,
)
from spaceport.db.models import Organization
from spaceport.db.session import get_session
from spaceport.errors import Forbidden, NotFound
from spaceport.services import access, audit, orgs
from spaceport.settings import get_settings

router = APIRouter(tags=["organizations"])
ORG = "/api/v1/orgs/{org}"
Role = Literal["read", "contributor", "write", "admin"]


class NewOrg(BaseModel):
    name: str = Field(description="Its namespace: letters, digits, '.', '_' or '-'.")
    fullname: str | None = Field(default=None, max_length=200)


class OrgChange(BaseModel):
    name: str | None = Field(default=None, description="A new name: its Spaces move with it.")
    fullname: str | None = Field(default=None, max_length=200)


class MemberRole(BaseModel):
    role: Role


def visible_org(
    org: str,
    who: Principal | None = Depends(optional_principal),
    session: Session = Depends(get_session),
) -> Organization:
    """The organization if the caller is a member (or a site admin); 404 to others."""
    found = orgs.find_org(session, org)
    if found is None or not access.can_see_org(org, who):
        raise NotFound(f"No organization named {org!r} among yours: see GET /api/v1/orgs")
    return found


def managed_org(
    org: Organization = Depends(visible_org), who: Principal = Depends(require_principal)
) -> Organization:
    refusal = access.org_admin_refusal(org.name, who)
    if refusal is not None:
        raise Forbidden(refusal)
    return org


@router.get("/api/v1/orgs")
def list_orgs(
    who: Principal = Depends(require_principal), session: Session = Depends(get_session)
) -> list[dict[str, Any]]:
    """The caller's organizations with their role (site admins: every organization)."""
    return orgs.listing(session, who)


@router.post("/api/v1/orgs", status_code=201)
def create_org(
    body: NewOrg,
    who: Principal = Depends(require_write),
    by: audit.Actor = Depends(acting),
    session: Session = Depends(get_session),
) -> dict[str, Any]:
    """A new organization; the caller is its first admin."""
    if who.scope is not None:
        raise Forbidden(
            f"This token is limited to {', '.join(who.scope)}: creating an organization needs "
            "a token without a scope"
        )
    if get_settings().org_creation == "admins" and not who.is_admin:
        raise Forbidden(
            "On this node only administrators create organizations (SPACEPORT_ORG_CREATION): "
            "ask one to create it and add you as its admin"
        )
    org = orgs.create_org(session, body.name, who.user, body.fullname)
    audit.record(session, by, "org.create", namespace=org.name, target=org.name)
    session.commit()
    return {**orgs.org_dict(session, org, members=True), "role": "admin"}


@router.get(ORG)
def get_org(
    org: Organization = Depends(visible_org),
    who: Principal = Depends(require_principal),
    session: Session = Depends(get_session),
) -> dict[str, Any]:
    return {**orgs.org_dict(session, org, members=True), "role": who.orgs.get(org.name)}


@router.patch(ORG)
def change_org(
    body: OrgChange,
    org: Organization = Depends(managed_org),
    who: Principal = Depends(require_principal),
    by: audit.Actor = Depends(acting),
    session: Session = Depends(get_session),
) -> dict[str, Any]:
    """Rename (its Spaces move to the new namespace and rebuild there) or retitle."""
    old = org.name
    if body.fullname is not None:
        org.fullname = body.fullname.strip() or None
    moved: list[str] = []
    if body.name is not None and body.name != old:
        moved = orgs.rename_org(session, get_settings(), org, body.name)
        audit.record(
            session,
            by,
            "org.rename",
            namespace=org.name,
            target=org.name,
            old=old,
            spaces=moved,
        )
    elif body.fullname is not None:
        audit.record(
            session,
            by,
            "org.update",
            namespace=org.name,
            target=org.name,
            fullname=org.fullname,
        )
    session.commit()
    return {**orgs.org_dict(session, org, members=True), "moved": moved}


@router.delete(ORG)
def delete_org(
    org: Organization = Depends(managed_org),
    who: Principal = Depends(require_principal),
    by: audit.Actor = Depends(acting),
    session: Session = Depends(get_session),
) -> dict[str, Any]:
    """Delete an organization that owns no Space (409 names the ones it still owns)."""
    name = org.name
    orgs.delete_org(session, org)
    audit.record(session, by, "org.delete", namespace=name, target=name)
    session.commit()
    return {"deleted": name}


@router.get(ORG + "/members")
def list_members(org: Organization = Depends(visible_org)) -> list[dict[str, Any]]:
    return [orgs.member_dict(m) for m in org.members]


@router.put(ORG + "/members/{user}")
def set_member(
    user: str,
    body: MemberRole,
    org: Organization = Depends(managed_org),
    who: Principal = Depends(require_principal),
    by: audit.Actor = Depends(acting),
    session: Session = Depends(get_session),
) -> dict[str, Any]:
    """Add a user with a role, or change their role (the last admin cannot step down)."""
    before = orgs.membership(org, user)
    old_role = before.role if before is not None else None
    member = orgs.set_member(session, org, user, body.role)
    audit.record(
        session,
        by,
        "org.member.add" if old_role is None else "org.member.role",
        namespace=org.name,
        target=user,
        role=body.role,
        **({"old_role": old_role} if old_role else {}),
    )
    session.commit()
    return orgs.member_dict(member)


@router.delete(ORG + "/members/{user}")
def remove_member(
    user: str,
    org: Organization = Depends(visible_org),
    who: Principal = Depends(require_principal),
    by: audit.Actor = Depends(acting),
    session: Session = Depends(get_session),
) -> dict[str, Any]:
    """Remove a member (the organization's admins), or leave it (any member, themself)."""
    if user != who.name or who.role != "write" or not who.reaches(org.name):
        refusal = access.org_admin_refusal(org.name, who)
        if refusal is not None:
            raise Forbidden(refusal)
    member = orgs.remove_member(session, org, user)
    audit.record(
        session,
        by,
        "org.member.remove",
        namespace=org.name,
        target=user,
        role=member.role,
    )
    session.commit()
    return {"removed": user, "org": org.name}


@router.get("/api/organizations/{org}/overview")
def hf_overview(org: str, session: Session = Depends(get_session)) -> dict[str, Any]:
    """`HfApi.get_organization_overview`: public facts (name, counts), as the Hub shows."""
    found = orgs.find_org(session, org)
    if found is None:
        raise NotFound(f"Organization not found: {org}")
    return orgs.org_dict(session, found, private_too=False)


@router.get("/api/organizations/{org}/members")
def hf_members(org: Organization = Depends(visible_org)) -> list[dict[str, Any]]:
    """`HfApi.list_organization_members` (members and site admins only)."""
    return [orgs.member_dict(m) for m in org.members]
