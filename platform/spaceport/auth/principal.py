"""Who is calling: a user and the role of the token they used.

Its own module so the authorization policy (`services/access.py`) and the HTTP layer
(`api/deps.py`, which finds the principal of a request) share it without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass

from spaceport.db.models import User


@dataclass(frozen=True)
class Principal:
    """The caller: a user and the role of the token they used."""

    user: User
    role: str
    token_name: str

    @property
    def name(self) -> str:
        return self.user.name

    @property
    def is_admin(self) -> bool:
        return self.user.is_admin
