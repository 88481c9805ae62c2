"""Space and user names: the one validator for the `{owner}/{name}` contract."""

from __future__ import annotations

import re

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")


class InvalidName(ValueError):
    """A name a person typed that cannot be used; the message says what is allowed."""


def check_name(value: str, what: str = "name") -> str:
    if not NAME_RE.fullmatch(value) or ".." in value or value.endswith((".git", ".")):
        raise InvalidName(
            f"invalid {what} {value!r}: use 1-96 letters, digits, '.', '_' or '-', starting "
            "with a letter or digit, without '..' and not ending in '.git'"
        )
    return value


def split_space_id(space_id: str) -> tuple[str, str]:
    owner, sep, name = space_id.partition("/")
    if not sep:
        raise InvalidName(f"invalid Space id {space_id!r}: expected 'owner/name'")
    return check_name(owner, "owner"), check_name(name, "Space name")
