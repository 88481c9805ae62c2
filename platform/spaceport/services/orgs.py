"""Organizations: create, rename, delete, and their members' roles.

An organization is a namespace like a user's (the two share one set of names), so its Spaces
are `org/name` and every route that takes an owner takes an organization. Who may do what is
services/access.py; this module keeps the rows consistent: names stay unique across users and
organizations, an organization always keeps an admin, and one that still owns Spaces is not
deleted (nothing lost silently).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from spaceport.auth.principal import Principal
from spaceport.db.models import Membership, Organization, Space, User
from spaceport.errors import Conflict, NotFound, SpaceportError
from spaceport.names import check_name
from spaceport.services import quotas
from spaceport.services.access import ORG_ROLES
from spaceport.services.space_setup import move_space
from spaceport.settings import Settings
from spaceport.timefmt import iso_seconds


def find_org(session: Session, name: str) -> Organization | None:
    return session.scalar(select(Organization).where(Organization.name == name))


def get_org(session: Session, name: str) -> Organization:
    org = find_org(session, name)
    if org is None:
        raise NotFound(f"No organization named {name!r}: see GET /api/v1/orgs")
    return org


def find_user(session: Session, name: str) -> User | None:
    return session.scalar(select(User).where(User.name == name))


def check_role(role: str) -> str:
    if role not in ORG_ROLES:
        raise SpaceportError(f"invalid role {role!r}: use one of {', '.join(ORG_ROLES)}")
    return role


def name_taken(session: Session, name: str) -> str | None:
    """What already uses `name` as a namespace ("user" or "organization"), or None."""
    if find_user(session, name) is not None:
        return "user"
    if find_org(session, name) is not None:
        return "organization"
    return None


def _check_free(session: Session, name: str) -> None:
    check_name(name, "organization name")
    taken = name_taken(session, name)
    if taken is not None:
        raise Conflict(f"The name {name!r} is already taken by a {taken}: choose another")
    if space_count(session, name):  # Spaces no one holds are not handed to a new owner
        raise Conflict(
            f"Spaces already exist under {name!r}: choose another name (an administrator can "
            "move those Spaces first)"
        )


def create_org(
    session: Session, name: str, creator: User, fullname: str | None = None
) -> Organization:
    """A new organization whose first admin is its creator."""
    _check_free(session, name)
    org = Organization(name=name, fullname=fullname)
    session.add(org)
    session.flush()
    session.add(Membership(org=org, user=creator, role="admin"))
    session.flush()
    return org


def space_count(session: Session, name: str, *, private_too: bool = True) -> int:
    query = select(func.count()).select_from(Space).where(Space.owner == name)
    if not private_too:
        query = query.where(Space.private.is_(False))
    return session.scalar(query) or 0


def rename_org(session: Session, settings: Settings, org: Organization, new_name: str) -> list[str]:
    """Rename the organization and move its Spaces to the new namespace (each keeps its
    files, variables, secrets and data; it rebuilds under its new id). Returns the new ids."""
    if new_name == org.name:
        return []
    _check_free(session, new_name)
    old = org.name
    owned = list(session.scalars(select(Space).where(Space.owner == old).order_by(Space.id)))
    org.name = new_name
    quotas.rename_namespace(session, old, new_name)  # no usage added: the moves are not checked
    session.flush()
    for space in owned:
        move_space(session, settings, space, new_name, space.name)
    return [s.space_id for s in owned]


def delete_org(session: Session, org: Organization) -> None:
    """Delete an organization that owns no Space (refused otherwise, naming them)."""
    owned = list(session.scalars(select(Space.name).where(Space.owner == org.name)))
    if owned:
        shown = ", ".join(f"{org.name}/{n}" for n in owned[:10])
        more = f" and {len(owned) - 10} more" if len(owned) > 10 else ""
        raise Conflict(
            f"{org.name} still owns {len(owned)} Space(s): {shown}{more}. Move them to another "
            "owner (POST /api/repos/move) or delete them first"
        )
    quotas.forget(session, org.name)
    session.delete(org)


def membership(org: Organization, user_name: str) -> Membership | None:
    return next((m for m in org.members if m.user.name == user_name), None)


def _admins(org: Organization) -> list[str]:
    return [m.user.name for m in org.members if m.role == "admin"]


def set_member(session: Session, org: Organization, user_name: str, role: str) -> Membership:
    """Add a user to the organization with `role`, or change their role."""
    check_role(role)
    user = find_user(session, user_name)
    if user is None:
        raise NotFound(f"No user named {user_name!r} (invite them: POST /api/v1/invitations)")
    member = membership(org, user_name)
    if member is None:
        member = Membership(org=org, user=user, role=role)
        session.add(member)
    else:
        if member.role == "admin" and role != "admin" and _admins(org) == [user_name]:
            raise Conflict(
                f"{user_name} is the last admin of {org.name}: make another member admin first"
            )
        member.role = role
    session.flush()
    return member


def remove_member(session: Session, org: Organization, user_name: str) -> Membership:
    member = membership(org, user_name)
    if member is None:
        raise NotFound(f"{user_name} is not a member of {org.name}")
    if member.role == "admin" and _admins(org) == [user_name]:
        raise Conflict(
            f"{user_name} is the last admin of {org.name}: make another member admin first, "
            "or delete the organization"
        )
    org.members.remove(member)
    session.delete(member)
    session.flush()
    return member


def orgs_of(session: Session, user: User) -> list[Membership]:
    return sorted(user.memberships, key=lambda m: m.org.name)


def all_orgs(session: Session) -> list[Organization]:
    return list(session.scalars(select(Organization).order_by(Organization.name)))


def member_dict(member: Membership) -> dict[str, Any]:
    """A member in Hugging Face's shape (`user`, `fullname`, `type`), with our role."""
    user = member.user
    return {
        "user": user.name,
        "fullname": user.fullname or user.name,
        "avatarUrl": "",
        "type": "user",
        "isPro": False,
        "role": member.role,
        "since": iso_seconds(member.created_at),
    }


def org_dict(
    session: Session, org: Organization, *, members: bool = False, private_too: bool = True
) -> dict[str, Any]:
    """The organization in Hugging Face's overview shape, with our members when asked; the
    public overview counts public Spaces only."""
    out: dict[str, Any] = {
        "type": "org",
        "id": str(org.id),
        "name": org.name,
        "fullname": org.fullname or org.name,
        "avatarUrl": "",
        "isVerified": False,
        "isEnterprise": False,
        "numUsers": len(org.members),
        "numSpaces": space_count(session, org.name, private_too=private_too),
        "createdAt": iso_seconds(org.created_at),
    }
    if members:
        out["members"] = [member_dict(m) for m in org.members]
    return out


def whoami_orgs(user: User) -> list[dict[str, Any]]:
    """The user's organizations as Hugging Face's whoami lists them."""
    return [
        {
            "type": "org",
            "id": str(m.org.id),
            "name": m.org.name,
            "fullname": m.org.fullname or m.org.name,
            "email": None,
            "canPay": False,
            "avatarUrl": "",
            "roleInOrg": m.role,
            "isEnterprise": False,
        }
        for m in sorted(user.memberships, key=lambda m: m.org.name)
    ]


def listing(session: Session, who: Principal) -> list[dict[str, Any]]:
    """The caller's organizations with their role, by name (site admins: every one); what
    `GET /api/v1/orgs` and the console's Organizations page show."""
    listed = all_orgs(session) if who.is_admin else [m.org for m in who.user.memberships]
    return [
        {**org_dict(session, o), "role": who.orgs.get(o.name)}
        for o in sorted(listed, key=lambda o: o.name)
    ]
