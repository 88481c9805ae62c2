"""`list_spaces`, `duplicate_repo(repo_type="space")` and `update_repo_settings` for Spaces.

`GET /api/spaces` pages with a `Link: <...>; rel="next"` header, which the client follows.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from spaceport.api.deps import (
    Principal,
    acting,
    optional_principal,
    readable_space,
    require_principal,
    writable_space,
)
from spaceport.api.errors import error_response
from spaceport.api.links import set_next_cursor, space_url
from spaceport.api.schemas import SpaceOptions
from spaceport.db.models import Space
from spaceport.db.session import get_session
from spaceport.errors import Forbidden, SpaceportError
from spaceport.lifecycle.proxy_routes import sync_routes
from spaceport.names import split_space_id
from spaceport.services import access, audit, spaces
from spaceport.services.space_list import ListQuery, page_spaces
from spaceport.services.space_setup import duplicate_space
from spaceport.settings import get_settings

router = APIRouter(tags=["huggingface"])


@router.get("/api/spaces")
def list_spaces(
    request: Request,
    response: Response,
    author: str | None = None,
    search: str | None = None,
    sort: str | None = None,
    direction: int = -1,
    limit: int | None = Query(default=None, ge=1),
    filter: list[str] = Query(default_factory=list),
    cursor: str | None = None,
    who: Principal | None = Depends(optional_principal),
    session: Session = Depends(get_session),
) -> list[dict[str, Any]]:
    """Spaces the caller may see, filtered and sorted like the Hub; `limit` is the page size
    (at most `list_page_max`), and `Link: rel="next"` points at the next page."""
    settings = get_settings()
    query = ListQuery(
        who=who,
        author=author,
        search=search or "",
        sort=sort or "createdAt",
        descending=direction < 0,
        tags=tuple(filter),
    )
    size = min(limit or settings.list_page_size, settings.list_page_max)
    page = page_spaces(session, settings, query, size, cursor)
    set_next_cursor(request, response, page.next_cursor)
    return page.items


class DuplicateSpace(SpaceOptions):
    repository: str


@router.post("/api/spaces/{owner}/{name}/duplicate", response_model=None)
def duplicate(
    request: Request,
    body: DuplicateSpace,
    source: Space = Depends(readable_space),
    who: Principal = Depends(require_principal),
    by: audit.Actor = Depends(acting),
    session: Session = Depends(get_session),
) -> dict[str, Any] | JSONResponse:
    """Copy a Space's files and variables (never its secrets) into a new Space, then build it."""
    body.refuse_unsupported()
    owner, name = split_space_id(body.repository)
    refusal = access.create_refusal(owner, who, name)
    if refusal is not None:
        raise Forbidden(refusal)
    url = space_url(request, f"{owner}/{name}")
    if spaces.find_space(session, owner, name) is not None:
        return error_response(409, f"You already created this space repo: {owner}/{name}", url=url)
    audit.record(  # committed with the copy (duplicate_space commits it)
        session,
        by,
        "space.duplicate",
        space=f"{owner}/{name}",
        source=source.space_id,
        secrets=[s.key for s in body.secrets],  # names only, never values
        variables=[v.key for v in body.variables],
    )
    copy = duplicate_space(
        session,
        get_settings(),
        source,
        owner,
        name,
        private=body.is_private(default=source.private),
        hardware=body.hardware,
        sleep_time=body.sleep_time,
        secrets=[s.entry() for s in body.secrets],
        variables=[v.entry() for v in body.variables],
        pusher=who.name,
    )
    return {"url": url, "id": copy.space_id, "filesCopyPending": False}


class RepoSettings(BaseModel):
    model_config = ConfigDict(extra="allow")

    private: bool | None = None
    visibility: str | None = None
    gated: Any = Field(default=None)


@router.put("/api/spaces/{owner}/{name}/settings")
def update_settings(
    body: RepoSettings,
    space: Space = Depends(writable_space),
    by: audit.Actor = Depends(acting),
    session: Session = Depends(get_session),
) -> dict[str, Any]:
    """`update_repo_settings(private=/visibility=)`; gating is a Hub feature we do not have."""
    if body.gated not in (None, False):
        raise SpaceportError("gated Spaces are not supported by Spaceport")
    options = SpaceOptions(private=body.private, visibility=body.visibility)
    private = options.is_private(default=space.private)
    if private != space.private:
        audit.record(session, by, "space.settings", space=space.space_id, private=private)
    space.private = private
    session.commit()
    sync_routes(get_settings())  # a private app's route checks who comes in
    return {"private": space.private}
