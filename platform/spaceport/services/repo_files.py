"""A Space's files at the head of its repo, as the console and the native API list them (the
tree, read-only: never a checkout). Hugging Face's file routes read `git/browse.py` directly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from spaceport.db.models import Space
from spaceport.errors import NotFound
from spaceport.git.repos import git, head_sha, repo_path
from spaceport.settings import get_settings


def head(space: Space) -> tuple[Path, str]:
    """The Space's repo and its head commit; NotFound before the first push."""
    repo = repo_path(get_settings(), space.owner, space.name)
    sha = head_sha(repo)
    if sha is None:
        raise NotFound(f"{space.space_id} has no commits yet: push to its git remote first")
    return repo, sha


def list_files(space: Space) -> dict[str, Any]:
    """Every file of the repo at HEAD with its size (read-only; the tree, not a checkout)."""
    repo, sha = head(space)
    files = []
    for line in git(repo, "ls-tree", "-r", "-l", "--full-tree", sha).decode().splitlines():
        meta, _, path = line.partition("\t")
        parts = meta.split()
        if len(parts) == 4 and parts[1] == "blob":
            size = int(parts[3]) if parts[3].isdigit() else 0
            files.append({"path": path, "size": size})
    return {"sha": sha, "files": files}
