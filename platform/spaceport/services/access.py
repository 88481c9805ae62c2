"""Who may see and change a Space: the one authorization policy every route uses."""

from __future__ import annotations

from spaceport.auth.principal import Principal
from spaceport.db.models import Space


def is_owner(space: Space, who: Principal | None) -> bool:
    return who is not None and (who.is_admin or who.name == space.owner)


def can_read(space: Space, who: Principal | None) -> bool:
    return not space.private or is_owner(space, who)


def can_write(space: Space, who: Principal | None) -> bool:
    return who is not None and who.role == "write" and is_owner(space, who)


def can_create_in(owner: str, who: Principal | None) -> bool:
    return who is not None and who.role == "write" and (who.is_admin or who.name == owner)


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
    if who.role != "write":
        return 403, f"This token is read-only: create a write token to push to {space.space_id}."
    if not is_owner(space, who):
        return 403, f"You ({who.name}) are not allowed to push to {space.space_id}."
    return None
