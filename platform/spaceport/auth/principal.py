"""Who is calling: a user, the role and reach of the token they used, and their organizations.

Its own module so the authorization policy (`services/access.py`) and the HTTP layer
(`api/deps.py`, which finds the principal of a request) share it without importing each other.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from spaceport.auth import scopes
from spaceport.db.models import Token, User


@dataclass(frozen=True)
class Principal:
    """The caller: a user, the role of the token they used (read or write), what a fine-grained
    token is limited to (None: all the user may reach) and the user's organization roles."""

    user: User
    role: str
    token_name: str
    orgs: Mapping[str, str] = field(default_factory=dict)
    scope: tuple[str, ...] | None = None
    token_id: int | None = None
    expires_at: datetime | None = None  # when the token used expires (None: never)

    @property
    def name(self) -> str:
        return self.user.name

    @property
    def is_admin(self) -> bool:
        """A site administrator acting as one: a fine-grained token narrows an administrator
        to what it names, like anyone else's (it never carries the site's admin rights)."""
        return self.user.is_admin and self.scope is None

    @property
    def namespaces(self) -> tuple[str, ...]:
        """The user's own name and their organizations': whose private Spaces they may see."""
        return (self.user.name, *self.orgs)

    def reaches(self, owner: str, name: str | None = None) -> bool:
        """Whether the token's scope covers this namespace (or this Space in it)."""
        return scopes.allows(self.scope, owner, name)


def org_roles(user: User) -> dict[str, str]:
    return {m.org.name: m.role for m in user.memberships}


def principal_of(token: Token, role: str | None = None, token_name: str | None = None) -> Principal:
    """The principal a (valid, unexpired) token stands for."""
    return Principal(
        user=token.user,
        role=role or token.role,
        token_name=token_name or token.name,
        orgs=org_roles(token.user),
        scope=tuple(token.scope) if token.scope is not None else None,
        token_id=token.id,
        expires_at=token.expires_at,
    )
