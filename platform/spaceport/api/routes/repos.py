"""`/api/repos/*`: create and delete Space repos as huggingface_hub's create_repo sends it."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from spaceport.api.deps import Principal, require_principal
from spaceport.api.errors import error_response
from spaceport.db.session import get_session
from spaceport.errors import Forbidden, RepoNotFound
from spaceport.services import access, spaces
from spaceport.services.lifecycle import delete_space
from spaceport.settings import get_settings

router = APIRouter()


class CreateRepo(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str
    organization: str | None = None
    type: str = "model"
    private: bool | None = None
    sdk: str | None = None
    hardware: str | None = None
    sleep_time: int | None = Field(default=None, alias="sleepTimeSeconds")


class DeleteRepo(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str
    organization: str | None = None
    type: str = "model"


def _space_url(owner: str, name: str) -> str:
    return f"{get_settings().url.rstrip('/')}/spaces/{owner}/{name}"


@router.post("/api/repos/create", response_model=None)
def create_repo(
    body: CreateRepo,
    who: Principal = Depends(require_principal),
    session: Session = Depends(get_session),
) -> dict[str, Any] | JSONResponse:
    if body.type != "space":
        return error_response(400, f"Only Space repos are hosted here (got type {body.type!r})")
    owner = body.organization or who.name
    if not access.can_create_in(owner, who):
        raise Forbidden(f"You ({who.name}) cannot create Spaces under {owner!r}")
    existing = spaces.find_space(session, owner, body.name)
    if existing is not None:
        return error_response(
            409,
            f"You already created this space repo: {owner}/{body.name}",
            url=_space_url(owner, body.name),
        )
    space = spaces.create_space(
        session,
        get_settings(),
        owner,
        body.name,
        sdk=body.sdk,
        private=bool(body.private),
        hardware=body.hardware,
        sleep_time=body.sleep_time,
    )
    return {"url": _space_url(owner, space.name), "name": space.space_id, "id": f"space-{space.id}"}


@router.delete("/api/repos/delete")
def delete_repo(
    body: DeleteRepo,
    who: Principal = Depends(require_principal),
    session: Session = Depends(get_session),
) -> dict[str, str]:
    owner = body.organization or who.name
    space = spaces.find_space(session, owner, body.name)
    if space is None or not access.can_read(space, who):
        raise RepoNotFound(f"Repository not found: {owner}/{body.name}")
    if not access.can_write(space, who):
        raise Forbidden(f"You ({who.name}) cannot delete {space.space_id}")
    delete_space(session, get_settings(), space)
    return {"deleted": f"{owner}/{body.name}"}
