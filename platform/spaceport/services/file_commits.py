"""Commits made through the Hugging Face API (`create_commit`, `upload_file`, ...): they land
in the Space's repo exactly as a push would, and a new head of `main` starts a build."""

from __future__ import annotations

from spaceport.auth.principal import Principal
from spaceport.db.models import Space
from spaceport.db.session import session_scope
from spaceport.errors import SpaceportError
from spaceport.git import commits
from spaceport.git.repos import head_sha, repo_path
from spaceport.services import audit, quotas, spaces
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
    ip: str | None = None,
) -> str:
    """Write the commit; a new head of main starts a build exactly like a push. The commit is
    recorded in the audit log (`space.commit`, any branch) in the transaction of its build."""
    with session_scope() as session:
        space = session.get(Space, space_pk)
        if space is None:
            raise SpaceportError("the Space was deleted during the commit")
        repo = repo_path(settings, space.owner, space.name)
        before = head_sha(repo)
        if revision == "main":  # a new head of main builds: refused before it lands
            quotas.check_build(session, settings, space)
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
        audit.record(
            session,
            audit.Actor.of(who, ip),
            "space.commit",
            space=space.space_id,
            ref=revision,
            before=before if revision == "main" else None,
            after=sha,
            files=len(ops),
        )
        if revision == "main":
            spaces.on_new_commit(session, space_pk, before, None, audited=None)
    return sha
