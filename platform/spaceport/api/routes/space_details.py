"""Native `/api/v1/spaces...` reads: summaries with live state, the repo's files at HEAD.

The console's pages poll these for live badges, and the CLI's `list` and `status` print them;
Hugging Face's routes stay untouched for its clients.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import PlainTextResponse
from sqlalchemy.orm import Session

from spaceport.api.deps import Principal, optional_principal, readable_space
from spaceport.api.links import set_next_cursor
from spaceport.db.models import Space
from spaceport.db.session import get_session
from spaceport.errors import NotFound, SpaceportError
from spaceport.git.repos import GitError, read_file
from spaceport.services import summaries
from spaceport.services.repo_files import head, list_files
from spaceport.settings import get_settings

router = APIRouter(prefix="/api/v1/spaces", tags=["native"])

MAX_SHOWN_BYTES = 1_000_000


class BinaryFile(SpaceportError):
    status_code = 415


@router.get("")
def list_spaces(
    request: Request,
    response: Response,
    search: str = Query("", description="Part of the Space id or title."),
    stage: str = Query(
        "", description="Stages or groups (ok, busy, error, idle), comma-separated."
    ),
    owner: str = Query("", description="Only this owner's Spaces."),
    limit: int | None = Query(None, ge=1, le=1000, description="At most this many (a page)."),
    offset: int = Query(0, ge=0, description="Skip this many (the pages before)."),
    who: Principal | None = Depends(optional_principal),
    session: Session = Depends(get_session),
) -> list[dict[str, Any]]:
    """The Spaces the caller may see, newest change first, with their live stage. With
    `limit`, one page: `X-Total-Count` says how many the filters keep, and
    `Link: rel="next"` points at the next page (the console polls only the cards it shows)."""
    found = summaries.listing(
        session,
        get_settings(),
        who,
        search=search,
        stage=stage,
        owner=owner,
        limit=limit,
        offset=offset,
    )
    response.headers["X-Total-Count"] = str(found.total)
    if limit is not None and offset + limit < found.total:
        set_next_cursor(request, response, str(offset + limit), param="offset")
    return found.items


@router.get("/{owner}/{name}")
def space_summary(
    space: Space = Depends(readable_space), session: Session = Depends(get_session)
) -> dict[str, Any]:
    """One Space: stage, message, error, serving container, last build, URLs."""
    return summaries.space_summary(session, get_settings(), space)


@router.get("/{owner}/{name}/files")
def space_files(space: Space = Depends(readable_space)) -> dict[str, Any]:
    """The repo's files at HEAD (path and size)."""
    try:
        return list_files(space)
    except GitError as exc:
        raise NotFound(f"cannot read the repository of {space.space_id}: {exc}") from exc


@router.get("/{owner}/{name}/files/{path:path}", response_class=PlainTextResponse)
def space_file(path: str, space: Space = Depends(readable_space)) -> PlainTextResponse:
    """One file's text at HEAD; binary or huge files are described, not sent."""
    repo, sha = head(space)
    data = read_file(repo, sha, path)
    if data is None:
        raise NotFound(f"{path} is not in {space.space_id} at {sha[:12]}")
    if b"\0" in data[:8000]:
        raise BinaryFile(f"{path} is a binary file ({len(data)} bytes): clone the repo to get it")
    shown = data[:MAX_SHOWN_BYTES].decode(errors="replace")
    headers = {"X-Repo-Commit": sha, "X-File-Size": str(len(data))}
    return PlainTextResponse(shown, headers=headers)
