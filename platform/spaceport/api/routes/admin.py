"""Native admin view, `GET /api/v1/admin/overview`: nodes and their GPUs, the build queue, and
recent failures (services/overview.py); `GET /api/v1/hardware`: the flavors this node offers.

One answer for the console's admin page and `spaceport admin`, so an operator sees at once
what is building, what is stuck, what broke and which Space holds which GPU.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel
from sqlalchemy.orm import Session

from spaceport.api.deps import Principal, acting, require_admin, require_principal
from spaceport.db.session import get_session
from spaceport.engine.base import RuntimeBackendError
from spaceport.errors import SpaceportError
from spaceport.services import audit
from spaceport.services import overview as admin_overview
from spaceport.services.hardware import hardware_options
from spaceport.settings import get_settings

router = APIRouter(prefix="/api/v1", tags=["native"])


@router.get("/admin/overview")
def overview(
    _: Principal = Depends(require_admin), session: Session = Depends(get_session)
) -> dict[str, Any]:
    """Nodes and GPUs, the build queue, recent failures: the operator's morning read."""
    return admin_overview.overview(session, get_settings())


@router.get("/nodes")
def list_nodes(
    _: Principal = Depends(require_admin), session: Session = Depends(get_session)
) -> list[dict[str, Any]]:
    """The machines apps run on: state, CPUs, memory, GPUs (free or whose), Spaces on each."""
    return admin_overview.nodes(get_settings(), session)


class Availability(BaseModel):
    availability: Literal["active", "drain", "pause"]


@router.post("/nodes/{name}/availability")
def node_availability(
    name: str,
    body: Availability,
    _: Principal = Depends(require_admin),
    by: audit.Actor = Depends(acting),
    session: Session = Depends(get_session),
) -> dict[str, str]:
    """`drain`: every Space on the node moves elsewhere and none lands there; `active`: back."""
    try:
        admin_overview.set_availability(get_settings(), name, body.availability)
    except RuntimeBackendError as exc:
        raise SpaceportError(str(exc)) from exc
    # The engine holds this state, not the database: recorded once the engine took it.
    audit.record(session, by, "node.availability", target=name, availability=body.availability)
    return {"node": name, "availability": body.availability}


@router.get("/hardware")
def hardware(_: Principal = Depends(require_principal)) -> list[dict[str, Any]]:
    """Hardware flavors and what this node has free for each."""
    return hardware_options(get_settings())
