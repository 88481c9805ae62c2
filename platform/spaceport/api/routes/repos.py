"""`/api/repos/{create,delete,move}` as huggingface_hub's create_repo, delete_repo and move_repo
send them. Only Space repos live here; other repo types get a clear 400.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from spaceport.api.deps import Principal, acting, require_principal
from spaceport.api.errors import error_response
from spaceport.api.links import space_url
from spaceport.api.schemas import SpaceOptions
from spaceport.db.session import get_session
from spaceport.errors import Forbidden, RepoNotFound, SpaceportError
from spaceport.lifecycle.proxy_routes import try_sync_routes
from spaceport.names import split_space_id
from spaceport.services import access, audit, quotas, spaces
from spaceport.services.operations import delete_space
from spaceport.services.space_setup import check_env, check_hardware, move_space, store_env
from spaceport.settings import get_settings

router = APIRouter(tags=["huggingface"])

ONLY_SPACES = (
    "Spaceport hosts Spaces only: pass repo_type='space' (CLI: --repo-type space); got type {!r}"
)


class CreateRepo(SpaceOptions):
    name: str
    organization: str | None = None
    type: str = "model"
    sdk: str | None = None


class RepoRef(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str
    organization: str | None = None
    type: str = "model"


class MoveRepo(BaseModel):
    model_config = ConfigDict(extra="allow")

    from_repo: str = Field(alias="fromRepo")
    to_repo: str = Field(alias="toRepo")
    type: str = "model"


@router.post("/api/repos/create", response_model=None)
def create_repo(
    request: Request,
    body: CreateRepo,
    who: Principal = Depends(require_principal),
    by: audit.Actor = Depends(acting),
    session: Session = Depends(get_session),
) -> dict[str, Any] | JSONResponse:
    if body.type != "space":
        return error_response(400, ONLY_SPACES.format(body.type))
    body.refuse_unsupported()
    owner = body.organization or who.name
    refusal = access.create_refusal(owner, who, body.name)
    if refusal is not None:
        raise Forbidden(refusal)
    url = space_url(request, f"{owner}/{body.name}")
    if spaces.find_space(session, owner, body.name) is not None:
        # huggingface_hub's exist_ok=True reads `url` from this body.
        return error_response(
            409, f"You already created this space repo: {owner}/{body.name}", url=url
        )
    settings = get_settings()
    quotas.check_new_space(session, settings, owner)
    check_env([e.entry() for e in [*body.secrets, *body.variables]])
    try:
        space = spaces.create_space(
            session,
            settings,
            owner,
            body.name,
            sdk=body.sdk,
            private=body.is_private(),
            hardware=check_hardware(settings, body.hardware),
            sleep_time=body.sleep_time,
            created_by=who.name,
        )
    except ValueError as exc:  # an unknown sdk
        raise SpaceportError(str(exc)) from None
    store_env(
        session,
        settings,
        space,
        [s.entry() for s in body.secrets],
        [v.entry() for v in body.variables],
    )
    audit.record(
        session,
        by,
        "space.create",
        space=space.space_id,
        sdk=space.sdk,
        private=space.private,
        hardware=space.hardware_requested,
        secrets=[s.key for s in body.secrets],  # names only, never values
        variables=[v.key for v in body.variables],
    )
    session.commit()
    # Its route exists from now on (not live): no deploy of it will reload the proxy, and this
    # reload happens while its creator waits for this answer, not while it polls.
    try_sync_routes(settings)
    return {"url": url, "name": space.space_id, "id": f"space-{space.id}"}


def _writable(session: Session, who: Principal, owner: str, name: str) -> Any:
    space = spaces.find_space(session, owner, name)
    if space is None or not access.can_read(space, who):
        raise RepoNotFound(f"Repository not found: {owner}/{name}")
    refusal = access.write_refusal(space, who)
    if refusal is not None:
        raise Forbidden(refusal)
    return space


@router.delete("/api/repos/delete")
def delete_repo(
    body: RepoRef,
    who: Principal = Depends(require_principal),
    by: audit.Actor = Depends(acting),
    session: Session = Depends(get_session),
) -> dict[str, str]:
    owner = body.organization or who.name
    space = _writable(session, who, owner, body.name)
    audit.record(session, by, "space.delete", space=space.space_id)
    delete_space(session, get_settings(), space)
    return {"deleted": f"{owner}/{body.name}"}


@router.post("/api/repos/move")
def move_repo(
    body: MoveRepo,
    who: Principal = Depends(require_principal),
    by: audit.Actor = Depends(acting),
    session: Session = Depends(get_session),
) -> dict[str, str]:
    """Rename or transfer a Space; the old id stops answering (no redirects kept)."""
    if body.type != "space":
        raise SpaceportError(ONLY_SPACES.format(body.type))
    src_owner, src_name = split_space_id(body.from_repo)
    dst_owner, dst_name = split_space_id(body.to_repo)
    space = _writable(session, who, src_owner, src_name)
    refusal = access.create_refusal(dst_owner, who, dst_name)
    if refusal is not None:
        raise Forbidden(refusal)
    settings = get_settings()
    quotas.check_move(session, settings, space, dst_owner, dst_name)
    old_id = space.space_id
    # Under the new id (its page shows it); the old namespace's log keeps it as the target.
    audit.record(
        session, by, "space.move", space=f"{dst_owner}/{dst_name}", target=old_id, source=old_id
    )
    if dst_owner != src_owner:
        audit.record(session, by, "space.move", space=old_id, destination=f"{dst_owner}/{dst_name}")
    move_space(session, settings, space, dst_owner, dst_name)
    return {"id": space.space_id}
