"""An administrator's hold on accounts: deactivate, reactivate, delete.

Deactivating stops a person at once (their tokens, console sessions and private-app cookies all
come through `auth.tokens.is_usable`) while their Spaces keep running. Deleting never loses a
Space silently: the admin names an owner to move them to, or confirms their deletion by typing
the user's name; with neither, the Spaces are listed and nothing happens.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from spaceport.auth.principal import Principal
from spaceport.db.models import Membership, Organization, Space, User, utcnow
from spaceport.errors import Conflict, NotFound, SpaceportError
from spaceport.services import quotas
from spaceport.services.operations import delete_space
from spaceport.services.space_setup import move_space
from spaceport.settings import Settings


class SpacesWouldBeLost(Conflict):
    """Deleting a user who owns Spaces, without saying where they go."""

    def __init__(self, user: str, spaces: list[str]) -> None:
        super().__init__(
            f"{user} owns {len(spaces)} Space(s): {', '.join(spaces)}. Give them to another "
            f"owner (transferTo=<user or organization>) or delete them (deleteSpaces={user}, "
            "their name, to confirm)"
        )
        self.spaces = spaces


@dataclass
class Deleted:
    """What deleting a user did with their Spaces: moved (old id -> new id) or deleted."""

    user: str
    moved: dict[str, str] = field(default_factory=dict)
    deleted: list[str] = field(default_factory=list)


def find_user(session: Session, name: str) -> User:
    user = session.scalar(select(User).where(User.name == name))
    if user is None:
        raise NotFound(f"No user named {name!r}: see GET /api/v1/users")
    return user


def _not_yourself(user: User, who: Principal, what: str) -> None:
    if user.id == who.user.id:
        raise Conflict(f"You cannot {what} yourself ({user.name}): ask another administrator")


def deactivate(session: Session, user: User, who: Principal) -> None:
    """The user's tokens, sessions and app cookies stop at the caller's commit; their Spaces,
    memberships and history stay, for `activate`."""
    _not_yourself(user, who, "deactivate")
    if user.deactivated_at is None:
        user.deactivated_at = utcnow()


def activate(user: User) -> None:
    """Undo `deactivate`: the tokens they had work again (revoked ones stay revoked)."""
    user.deactivated_at = None


def spaces_of(session: Session, user: User) -> list[Space]:
    return list(session.scalars(select(Space).where(Space.owner == user.name).order_by(Space.id)))


def last_admin_of(session: Session, user: User) -> list[str]:
    """Organizations whose only admin is this user (deleting them would orphan it)."""
    orphaned = []
    for membership in user.memberships:
        if membership.role != "admin":
            continue
        admins = session.scalars(
            select(Membership).where(
                Membership.org_id == membership.org_id, Membership.role == "admin"
            )
        )
        if all(m.user_id == user.id for m in admins):
            orphaned.append(membership.org.name)
    return orphaned


def _check_target(session: Session, user: User, target: str, spaces: list[Space]) -> None:
    if target == user.name:
        raise SpaceportError(f"transferTo must be another owner than {user.name} itself")
    is_user = session.scalar(select(User).where(User.name == target)) is not None
    is_org = session.scalar(select(Organization).where(Organization.name == target)) is not None
    if not (is_user or is_org):
        raise NotFound(f"transferTo: no user or organization named {target!r}")
    taken = [
        s.name
        for s in spaces
        if session.scalar(select(Space.id).where(Space.owner == target, Space.name == s.name))
        is not None
    ]
    if taken:
        raise Conflict(
            f"transferTo {target}: it already has Spaces named {', '.join(taken)}; rename "
            "those first (POST /api/repos/move) or pick another owner"
        )


def delete(
    session: Session,
    settings: Settings,
    user: User,
    who: Principal,
    *,
    transfer_to: str | None = None,
    delete_spaces: str | None = None,
) -> Deleted:
    """Delete the user: their Spaces first go to `transfer_to` or are deleted (when
    `delete_spaces` repeats the user's name); everything is checked before anything moves."""
    _not_yourself(user, who, "delete")
    orphaned = last_admin_of(session, user)
    if orphaned:
        raise Conflict(
            f"{user.name} is the last admin of {', '.join(orphaned)}: make someone else an "
            "admin there first (or delete the organization)"
        )
    if transfer_to is not None and delete_spaces is not None:
        raise SpaceportError("give transferTo or deleteSpaces, not both")
    if delete_spaces is not None and delete_spaces != user.name:
        raise SpaceportError(
            f"deleteSpaces must be the user's name ({user.name}) to confirm deleting their "
            f"Spaces (got {delete_spaces!r})"
        )
    spaces = spaces_of(session, user)
    if spaces and transfer_to is None and delete_spaces is None:
        raise SpacesWouldBeLost(user.name, [s.space_id for s in spaces])
    if spaces and transfer_to is not None:
        _check_target(session, user, transfer_to, spaces)
    done = Deleted(user.name)
    for space in spaces:
        old = space.space_id
        if transfer_to is not None:
            move_space(session, settings, space, transfer_to, space.name)
            done.moved[old] = space.space_id
        else:
            delete_space(session, settings, space)
            done.deleted.append(old)
    # Nothing of theirs passes to a later user of the name: no contributor's claim on the
    # Spaces they created in organizations, no quota.
    session.execute(update(Space).where(Space.created_by == user.name).values(created_by=None))
    quotas.forget(session, user.name)
    session.delete(user)  # its tokens and memberships go with it
    session.flush()
    return done
