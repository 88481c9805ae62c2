"""Hugging Face's read endpoints for a Space's files, answered from its bare git repo.

`list_repo_tree`/`list_repo_files` (tree), `get_paths_info`, `hf_hub_download`/`file_exists`
(resolve, with the `X-Repo-Commit` and `ETag` headers the client requires), `list_repo_commits`
and `space_info(revision=...)`. Files are served as downloads, never rendered: they come from
Space owners and must not run as pages on the console's origin.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request, Response
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session

from spaceport.api.deps import readable_space
from spaceport.api.errors import error_response
from spaceport.api.links import decode_cursor, set_next_link
from spaceport.db.models import Space
from spaceport.db.session import get_session
from spaceport.git import browse
from spaceport.git.browse import EntryNotFound, TreeEntry
from spaceport.git.repos import repo_path
from spaceport.services.views import space_dict
from spaceport.settings import get_settings
from spaceport.timefmt import iso_hf

router = APIRouter(tags=["huggingface"])

TREE_PAGE = 1000
COMMITS_PAGE = 50
TEXT_TYPES = ("text/", "application/json", "application/javascript", "application/xml")


def entry_dict(entry: TreeEntry) -> dict[str, Any]:
    """A tree entry in the shape of huggingface_hub's RepoFile / RepoFolder."""
    if entry.is_file:
        return {"type": "file", "oid": entry.oid, "size": entry.size, "path": entry.path}
    return {"type": "directory", "oid": entry.oid, "size": 0, "path": entry.path}


def _repo(space: Space) -> Path:
    return repo_path(get_settings(), space.owner, space.name)


@router.get("/api/spaces/{owner}/{name}/tree/{revision}")
@router.get("/api/spaces/{owner}/{name}/tree/{revision}/{path:path}")
def tree(
    request: Request,
    response: Response,
    revision: str,
    path: str = "",
    recursive: bool = False,
    cursor: str | None = None,
    space: Space = Depends(readable_space),
) -> list[dict[str, Any]]:
    repo = _repo(space)
    sha = browse.require_revision(repo, revision)
    if sha is None:
        if path.strip("/"):
            raise EntryNotFound(f"Folder not found: {path!r} (the Space has no commit yet)")
        return []
    entries = [
        e for e in browse.list_tree(repo, sha, path, recursive=recursive) if e.kind != "commit"
    ]
    start = decode_cursor(cursor)
    page = entries[start : start + TREE_PAGE]
    more = start + TREE_PAGE < len(entries)
    set_next_link(request, response, start + TREE_PAGE if more else None)
    return [entry_dict(e) for e in page]


@router.post("/api/spaces/{owner}/{name}/paths-info/{revision}")
def paths_info(
    revision: str,
    paths: list[str] = Form(default_factory=list),
    space: Space = Depends(readable_space),
) -> list[dict[str, Any]]:
    """Info on the given paths; paths that do not exist are left out (as the client expects)."""
    repo = _repo(space)
    sha = browse.require_revision(repo, revision)
    if sha is None:
        return []
    found = (browse.entry_at(repo, sha, p) for p in dict.fromkeys(paths))
    return [entry_dict(e) for e in found if e is not None and e.kind != "commit"]


@router.head(
    "/spaces/{owner}/{name}/resolve/{revision}/{path:path}", operation_id="resolve_file_head"
)
@router.get("/spaces/{owner}/{name}/resolve/{revision}/{path:path}")
def resolve_file(
    request: Request,
    revision: str,
    path: str,
    space: Space = Depends(readable_space),
) -> Response:
    """Download one file; HEAD gives the metadata hf_hub_download reads first."""
    repo = _repo(space)
    sha = browse.require_revision(repo, revision)
    entry = browse.entry_at(repo, sha, path) if sha else None
    if entry is None or not entry.is_file:
        resp = error_response(
            404, f"Entry not found: {path!r} in revision {revision!r}", EntryNotFound.error_code
        )
        if sha:  # lets the client cache that the file does not exist at this commit
            resp.headers["X-Repo-Commit"] = sha
        return resp
    assert sha is not None
    content_type = _download_type(entry.path)
    headers = {
        "X-Repo-Commit": sha,
        "ETag": f'"{entry.oid}"',
        "Content-Length": str(entry.size),
        "Accept-Ranges": "none",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; sandbox",
        "Content-Disposition": f"attachment; filename*=UTF-8''{_quote(entry.path)}",
        "Cache-Control": "private, max-age=0, must-revalidate",
    }
    if request.method == "HEAD":
        return Response(status_code=200, headers=headers, media_type=content_type)
    return StreamingResponse(
        browse.stream_blob(repo, entry.oid), headers=headers, media_type=content_type
    )


def _quote(path: str) -> str:
    return quote(path.rsplit("/", 1)[-1], safe="")


def _download_type(path: str) -> str:
    """Text as text/plain, media as itself, anything that could run (HTML, SVG) as bytes."""
    guessed = mimetypes.guess_type(path)[0] or "application/octet-stream"
    if guessed.startswith(TEXT_TYPES):
        return "text/plain; charset=utf-8"
    if guessed.startswith(("image/", "audio/", "video/")) and "svg" not in guessed:
        return guessed
    return "application/octet-stream"


@router.get("/api/spaces/{owner}/{name}/revision/{revision}")
def space_revision(
    revision: str,
    blobs: bool = False,
    space: Space = Depends(readable_space),
    session: Session = Depends(get_session),
) -> dict[str, Any]:
    """`space_info(revision=...)`; the client also calls it when a commit changes nothing."""
    sha = browse.require_revision(_repo(space), revision)
    return space_dict(session, get_settings(), space, sha=sha, files_metadata=blobs)


@router.get("/api/spaces/{owner}/{name}/refs")
def list_refs(space: Space = Depends(readable_space)) -> dict[str, Any]:
    """`list_repo_refs`: branches and tags (no pull requests or converts here)."""
    out: dict[str, list[dict[str, str]]] = {
        "branches": [],
        "tags": [],
        "converts": [],
        "pullRequests": [],
    }
    for ref, oid in browse.refs(_repo(space)):
        kind, _, short = ref.removeprefix("refs/").partition("/")
        item = {"name": short, "ref": ref, "targetCommit": oid}
        out["branches" if kind == "heads" else "tags"].append(item)
    return out


@router.get("/api/spaces/{owner}/{name}/commits/{revision}")
def commits(
    request: Request,
    response: Response,
    revision: str,
    cursor: str | None = None,
    space: Space = Depends(readable_space),
) -> list[dict[str, Any]]:
    """History of a revision, newest first, paginated with `Link` like the Hub."""
    repo = _repo(space)
    sha = browse.require_revision(repo, revision)
    if sha is None:
        return []
    start = decode_cursor(cursor)
    page = browse.log(repo, sha, skip=start, limit=COMMITS_PAGE + 1)
    set_next_link(request, response, start + COMMITS_PAGE if len(page) > COMMITS_PAGE else None)
    return [
        {
            "id": c.oid,
            "title": c.title,
            "message": c.message,
            "authors": [{"user": c.author}],
            "date": iso_hf(c.date),
        }
        for c in page[:COMMITS_PAGE]
    ]
