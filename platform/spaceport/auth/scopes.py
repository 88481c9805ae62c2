"""Fine-grained token scopes: a token limited to named Spaces and/or organizations.

An entry is `space:owner/name` or `org:name`. A scoped token reaches only what its entries
name, whatever its user may do elsewhere (the user's rights still apply inside). Public Spaces
stay readable to everyone, scoped or not.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from spaceport.names import check_name, split_space_id

KINDS = ("space", "org")


class InvalidScope(ValueError):
    """A scope entry that names nothing valid; the message says the accepted forms."""


def normalize(entries: Iterable[str]) -> list[str]:
    """Checked, de-duplicated entries; raises InvalidScope on a malformed one."""
    out: list[str] = []
    for raw in entries:
        kind, sep, value = raw.strip().partition(":")
        try:
            if not sep or kind not in KINDS:
                raise ValueError(raw)
            if kind == "space":
                value = "/".join(split_space_id(value))
            else:
                value = check_name(value, "organization")
        except ValueError:
            raise InvalidScope(
                f"invalid token scope {raw!r}: use 'space:owner/name' or 'org:name'"
            ) from None
        entry = f"{kind}:{value}"
        if entry not in out:
            out.append(entry)
    return out


def allows(scope: Sequence[str] | None, owner: str, name: str | None = None) -> bool:
    """Whether a token with `scope` reaches namespace `owner` (or the Space owner/name)."""
    if scope is None:
        return True
    if f"org:{owner}" in scope:
        return True
    return name is not None and f"space:{owner}/{name}" in scope


def describe(scope: Sequence[str] | None) -> str:
    if scope is None:
        return "everything its user can reach"
    return ", ".join(scope) if scope else "nothing"
