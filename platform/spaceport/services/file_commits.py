"""Commits made through the Hugging Face API (`create_commit`, `upload_file`, ...): they land
in the Space's repo exactly as a push would, and a new head of `main` starts a build."""

from __future__ import annotations

from spaceport.auth.principal import Principal
from spaceport.db.models import Space
from spaceport.db.session import session_scope
from spaceport.errors import SpaceportError
from spaceport.git import commits
from spaceport.git.repos import head_sha, repo_path
from spaceport.services import spaces
from spaceport.settings import Settings


def land_commit(
    settings: Settings,
    space_pk: int,
    revision: str,
    ops: list[commits.Operation],
    *,
    message: str,
    parent: str | None,
    who: Principal,
) -> str:
    """Write the commit; a new head of main starts a build exactly like a push."""
    with session_scope() as session:
        space = session.get(Space, space_pk)
        if space is None:
            raise SpaceportError("the Space was deleted during the commit")
        repo = repo_path(settings, space.owner, space.name)
        before = head_sha(repo)
        email = who.user.email or f"{who.name}@users.noreply.spaceport"
        sha = commits.commit_files(
            repo,
            revision,
            ops,
            message=message,
            author=commits.Author(who.name, email),
            parent_commit=parent,
            max_files=settings.git_max_files,
        )
        if revision == "main":
            spaces.on_new_commit(session, space_pk, before, who.name)
    return sha
