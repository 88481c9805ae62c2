"""Who may see and change a Space or an organization: the one authorization policy every route
uses.

Roles in an organization are Hugging Face's: `read` sees its private Spaces, `contributor` may
also create Spaces there and change the ones they created, `write` changes all of them, `admin`
also manages the organization and its members. Site admins may do everything. A fine-grained
token narrows all of this to the Spaces and organizations it names (auth/scopes.py).
"""

from __future__ import annotations

from spaceport.auth.principal import Principal
from spaceport.db.models import Space

ORG_ROLES = ("read", "contributor", "write", "admin")
CREATE_ROLES = ("contributor", "write", "admin")
WRITE_ROLES = ("write", "admin")


def _member(space: Space, who: Principal) -> bool:
    return who.is_admin or who.name == space.owner or space.owner in who.orgs


def _may_change(space: Space, who: Principal) -> bool:
    if who.is_admin or who.name == space.owner:
        return True
    role = who.orgs.get(space.owner)
    return role in WRITE_ROLES or (role == "contributor" and space.created_by == who.name)


def is_owner(space: Space, who: Principal | None) -> bool:
    """The caller's account may change the Space (the token's role and scope aside)."""
    return who is not None and _may_change(space, who)


def can_read(space: Space, who: Principal | None) -> bool:
    if not space.private:
        return True
    return who is not None and who.reaches(space.owner, space.name) and _member(space, who)


def can_write(space: Space, who: Principal | None) -> bool:
    return write_refusal(space, who) is None


def write_refusal(space: Space, who: Principal | None) -> str | None:
    """None when the caller may change the Space, else why not (said to the caller)."""
    if who is None:
        return "Authentication required: send an access token as 'Bearer <token>'"
    if who.role != "write":
        return f"This token is read-only: create a write token to change {space.space_id}"
    if not who.reaches(space.owner, space.name):
        return (
            f"This token is limited to {', '.join(who.scope or ())}: it cannot change "
            f"{space.space_id}"
        )
    if not _may_change(space, who):
        role = who.orgs.get(space.owner)
        if role is not None:
            return (
                f"You ({who.name}) are a {role} member of {space.owner}: changing "
                f"{space.space_id} needs the write or admin role"
                + (" (or having created it)" if role == "contributor" else "")
            )
        return f"You ({who.name}) are not allowed to change {space.space_id}"
    return None


def can_create_in(owner: str, who: Principal | None, name: str | None = None) -> bool:
    return create_refusal(owner, who, name) is None


def create_refusal(owner: str, who: Principal | None, name: str | None = None) -> str | None:
    """None when the caller may create a Space under `owner`, else why not."""
    if who is None:
        return "Authentication required: send an access token as 'Bearer <token>'"
    if who.role != "write":
        return "This token is read-only: create a write token to create Spaces"
    if not who.reaches(owner, name):
        return f"This token is limited to {', '.join(who.scope or ())}: not {owner!r}"
    if who.is_admin or who.name == owner or who.orgs.get(owner) in CREATE_ROLES:
        return None
    role = who.orgs.get(owner)
    if role is not None:
        return f"You ({who.name}) are a {role} member of {owner}: creating Spaces needs contributor"
    return f"You ({who.name}) cannot create Spaces under {owner!r}"


def can_see_org(org: str, who: Principal | None) -> bool:
    """Members (and site admins) see an organization's members, quota and settings."""
    return who is not None and (who.is_admin or org in who.orgs) and who.reaches(org)


def can_see_namespace(namespace: str, who: Principal | None) -> bool:
    """A namespace's quota and usage: the user themself, the organization's members, admins."""
    if who is None:
        return False
    return who.is_admin or (who.reaches(namespace) and namespace in who.namespaces)


def org_admin_refusal(org: str, who: Principal | None) -> str | None:
    """None when the caller may manage the organization (its admins and site admins)."""
    if who is None:
        return "Authentication required: send an access token as 'Bearer <token>'"
    if who.role != "write":
        return f"This token is read-only: create a write token to manage {org}"
    if not who.reaches(org):
        return f"This token is limited to {', '.join(who.scope or ())}: not {org!r}"
    if who.is_admin or who.orgs.get(org) == "admin":
        return None
    return f"You ({who.name}) are not an admin of the organization {org}"


def git_access(
    space: Space | None, who: Principal | None, *, write: bool
) -> tuple[int, str] | None:
    """None when allowed, else (HTTP status, message git shows the user)."""
    if space is None or not can_read(space, who):
        if who is None:
            return 401, "Authentication required: use an access token as the password."
        return 404, "Space not found (or you have no access to it)."
    if not write:
        return None
    if who is None:
        return 401, (
            "Authentication required to push: use an access token as the password "
            "(spaceport login, or the admin.token file)."
        )
    refusal = write_refusal(space, who)
    if refusal is not None:
        return 403, refusal.replace("to change", "to push to") + "."
    return None
