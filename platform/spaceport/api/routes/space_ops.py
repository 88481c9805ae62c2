"""Operating a Space: restart, pause, hardware, sleep time, secrets, variables, storage, run logs.

Hugging Face's routes (what `HfApi.restart_space`, `pause_space`, `request_space_hardware`,
`set_space_sleep_time`, `add_space_secret`, `add_space_variable`, `fetch_space_logs`... send)
answer in its shapes; the native extras (stop, start, wake, storage, the node's GPUs) live
under `/api/v1/`.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session
from sse_starlette.sse import EventSourceResponse

from spaceport.api.deps import (
    Principal,
    acting,
    optional_principal,
    readable_space,
    require_principal,
)
from spaceport.db.models import Space
from spaceport.db.session import get_session
from spaceport.errors import Forbidden, Unauthorized
from spaceport.lifecycle import gpu_allocator as allocator
from spaceport.lifecycle import run_logs
from spaceport.services import access, audit, domains, operations, spaces
from spaceport.services import shared_gpus as shared_gpus_service
from spaceport.services import variables as env
from spaceport.services.quotas import QuotaExceeded
from spaceport.services.views import runtime_dict
from spaceport.settings import get_settings

router = APIRouter()
HF = "/api/spaces/{owner}/{name}"
OVER_QUOTA_FOR_VISITORS = (
    "This Space is asleep and stays asleep: its owner has no room left in their quota."
)
NATIVE = "/api/v1/spaces/{owner}/{name}"


def owned_space(
    space: Space = Depends(readable_space),
    who: Principal | None = Depends(optional_principal),
) -> Space:
    """The Space if the caller may operate it (its owner or an admin, with a write token)."""
    if who is None:
        raise Unauthorized("Authentication required: send an access token as 'Bearer <token>'")
    refusal = access.write_refusal(space, who)
    if refusal is not None:
        raise Forbidden(refusal)
    return space


class HardwareBody(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    flavor: str
    sleep_time: int | None = Field(default=None, alias="sleepTimeSeconds")


class SleepBody(BaseModel):
    seconds: int


class KeyValue(BaseModel):
    key: str
    value: str
    description: str | None = None


class KeyOnly(BaseModel):
    key: str


class DomainBody(BaseModel):
    domain: str


class StorageBody(BaseModel):
    tier: str


def _runtime(space: Space) -> dict[str, Any]:
    return runtime_dict(get_settings(), space)


# --- Hugging Face's routes -------------------------------------------------------------------


@router.post(f"{HF}/restart")
@router.post(f"{NATIVE}/restart", tags=["native"])
def restart(
    factory: bool = Query(False, description="Rebuild without cache first (factory reboot)."),
    space: Space = Depends(owned_space),
    by: audit.Actor = Depends(acting),
    session: Session = Depends(get_session),
) -> dict[str, Any]:
    action = "space.rebuild" if factory else "space.restart"
    audit.record(session, by, action, space=space.space_id)  # committed with the restart
    operations.restart(session, get_settings(), space, factory=factory)
    return _runtime(space)


@router.post(f"{HF}/pause")
@router.post(f"{NATIVE}/pause", tags=["native"])
def pause(
    space: Space = Depends(owned_space),
    by: audit.Actor = Depends(acting),
    session: Session = Depends(get_session),
) -> dict[str, Any]:
    audit.record(session, by, "space.pause", space=space.space_id)
    operations.pause(session, get_settings(), space)
    return _runtime(space)


@router.post(f"{HF}/hardware")
def request_hardware(
    body: HardwareBody,
    space: Space = Depends(owned_space),
    by: audit.Actor = Depends(acting),
    session: Session = Depends(get_session),
) -> dict[str, Any]:
    audit.record(
        session,
        by,
        "space.hardware",
        space=space.space_id,
        previous=space.hardware_requested,
        flavor=body.flavor,
        sleep_time=body.sleep_time,
    )
    operations.set_hardware(session, get_settings(), space, body.flavor, body.sleep_time)
    return _runtime(space)


@router.post(f"{HF}/sleeptime")
def set_sleep_time(
    body: SleepBody,
    space: Space = Depends(owned_space),
    by: audit.Actor = Depends(acting),
    session: Session = Depends(get_session),
) -> dict[str, Any]:
    audit.record(session, by, "space.sleeptime", space=space.space_id, seconds=body.seconds)
    operations.set_sleep_time(session, space, body.seconds)
    return _runtime(space)


@router.get(f"{HF}/secrets")
def get_secrets(
    space: Space = Depends(owned_space), session: Session = Depends(get_session)
) -> dict[str, Any]:
    return env.secrets(session, space)


@router.post(f"{HF}/secrets")
def add_secret(
    body: KeyValue,
    space: Space = Depends(owned_space),
    by: audit.Actor = Depends(acting),
    session: Session = Depends(get_session),
) -> None:
    # By name, never by value (services/audit.py).
    audit.record(session, by, "space.secret.set", space=space.space_id, key=body.key)
    env.set_secret(session, get_settings(), space, body.key, body.value, body.description)


@router.delete(f"{HF}/secrets")
def delete_secret(
    body: KeyOnly,
    space: Space = Depends(owned_space),
    by: audit.Actor = Depends(acting),
    session: Session = Depends(get_session),
) -> None:
    audit.record(session, by, "space.secret.delete", space=space.space_id, key=body.key)
    env.delete_secret(session, get_settings(), space, body.key)


@router.get(f"{HF}/variables")
def get_variables(
    space: Space = Depends(owned_space), session: Session = Depends(get_session)
) -> dict[str, Any]:
    return env.variables(session, space)


@router.post(f"{HF}/variables")
def add_variable(
    body: KeyValue,
    space: Space = Depends(owned_space),
    by: audit.Actor = Depends(acting),
    session: Session = Depends(get_session),
) -> dict[str, Any]:
    audit.record(session, by, "space.variable.set", space=space.space_id, key=body.key)
    env.set_variable(session, get_settings(), space, body.key, body.value, body.description)
    return env.variables(session, space)


@router.delete(f"{HF}/variables")
def delete_variable(
    body: KeyOnly,
    space: Space = Depends(owned_space),
    by: audit.Actor = Depends(acting),
    session: Session = Depends(get_session),
) -> dict[str, Any]:
    audit.record(session, by, "space.variable.delete", space=space.space_id, key=body.key)
    env.delete_variable(session, get_settings(), space, body.key)
    return env.variables(session, space)


@router.post(f"{HF}/storage")
@router.post(f"{NATIVE}/storage", tags=["native"])
def request_storage(
    body: StorageBody,
    space: Space = Depends(owned_space),
    by: audit.Actor = Depends(acting),
    session: Session = Depends(get_session),
) -> dict[str, Any]:
    """Persistent storage at /data: small, medium or large (SPACEPORT_DATA_SIZES; with data
    disks on, /data is a filesystem of that size). A tier can grow, never shrink (409)."""
    if (space.storage or None) != body.tier:
        audit.record(
            session,
            by,
            "space.storage",
            space=space.space_id,
            previous=space.storage,
            tier=body.tier,
        )
    operations.set_storage(session, get_settings(), space, body.tier)
    return _runtime(space)


class MoveBody(BaseModel):
    node: str


@router.post(f"{NATIVE}/storage/move", tags=["native"])
def move_storage(
    body: MoveBody,
    space: Space = Depends(owned_space),
    by: audit.Actor = Depends(acting),
    session: Session = Depends(get_session),
) -> dict[str, Any]:
    """Cluster mode: copy a paused or stopped Space's /data to another node, its new home
    (the Space's next start runs there)."""
    audit.record(session, by, "space.storage.move", space=space.space_id, node=body.node)
    operations.move_storage(session, get_settings(), space, body.node)
    return {"space": space.space_id, "node": body.node}


@router.delete(f"{HF}/storage")
@router.delete(f"{NATIVE}/storage", tags=["native"])
def delete_storage(
    space: Space = Depends(owned_space),
    by: audit.Actor = Depends(acting),
    session: Session = Depends(get_session),
) -> dict[str, Any]:
    """Drop the /data volume and everything in it."""
    if space.storage:
        audit.record(
            session, by, "space.storage.delete", space=space.space_id, previous=space.storage
        )
    operations.set_storage(session, get_settings(), space, None)
    return _runtime(space)


@router.get(f"{HF}/logs/run")
def run_logs_stream(
    space: Space = Depends(readable_space), session: Session = Depends(get_session)
) -> EventSourceResponse:
    """Server-sent events: the app's output from the start of its current run, then live,
    continuing across restarts; secret values are masked."""
    space_pk = space.id
    session.commit()  # never hold the database (SQLite: its write lock) while streaming
    session.close()
    return EventSourceResponse(_events(space_pk), ping=15)


async def _events(space_pk: int) -> AsyncIterator[dict[str, str]]:
    async for ts, line in run_logs.follow(get_settings(), space_pk):
        yield {"data": json.dumps({"timestamp": ts, "data": line})}


# --- native extras -----------------------------------------------------------------------------


@router.post(f"{NATIVE}/stop", tags=["native"])
def stop(
    space: Space = Depends(owned_space),
    by: audit.Actor = Depends(acting),
    session: Session = Depends(get_session),
) -> dict[str, Any]:
    """Stop the app (visitors do not wake it) until `start` or `restart`."""
    audit.record(session, by, "space.stop", space=space.space_id)
    operations.stop(session, get_settings(), space)
    return _runtime(space)


@router.post(f"{NATIVE}/start", tags=["native"])
def start(
    space: Space = Depends(owned_space),
    by: audit.Actor = Depends(acting),
    session: Session = Depends(get_session),
) -> dict[str, Any]:
    audit.record(session, by, "space.start", space=space.space_id)
    operations.start(session, get_settings(), space)
    return _runtime(space)


@router.post(f"{NATIVE}/wake", tags=["native"])
def wake(
    space: Space = Depends(readable_space),
    who: Principal | None = Depends(optional_principal),
    by: audit.Actor = Depends(acting),
    session: Session = Depends(get_session),
) -> dict[str, Any]:
    """What a visitor's request does to a SLEEPING Space; anyone who can see it may."""
    # The token's last use is written: commit it, or the wake's own write waits on this
    # request's SQLite lock (as in `sleep` below).
    session.commit()
    try:
        woke = operations.wake(get_settings(), space.id)
    except QuotaExceeded as exc:
        if not access.can_write(space, who):  # its details name the owner's other Spaces
            raise QuotaExceeded(OVER_QUOTA_FOR_VISITORS) from None
        raise exc from None
    if woke:  # only a wake that happened is recorded
        audit.record(session, by, "space.wake", space=space.space_id)
        session.commit()
    session.refresh(space)
    return _runtime(space)


@router.post(f"{NATIVE}/sleep", tags=["native"])
def sleep(
    deep: bool = Query(False, description="Stop the container instead of freezing it."),
    space: Space = Depends(owned_space),
    by: audit.Actor = Depends(acting),
    session: Session = Depends(get_session),
) -> dict[str, Any]:
    """Put the Space to sleep now, as its sleep timer would; the next visitor wakes it."""
    session.commit()
    operations.sleep_now(get_settings(), space, deep=deep)  # in sessions of its own
    audit.record(session, by, "space.sleep", space=space.space_id, deep=deep)
    session.commit()
    session.refresh(space)
    return _runtime(space)


@router.get("/api/v1/gpus", tags=["native"])
def gpus(
    who: Principal = Depends(require_principal), session: Session = Depends(get_session)
) -> list[dict[str, Any]]:
    """This node's GPUs and the Space holding each; a private Space the caller cannot see
    shows as `"space": null` with `"busy": true` (its name is not theirs to learn)."""
    out = []
    for use in allocator.usage(get_settings()):
        holder = None
        if use.space_id is not None:
            owner, _, name = use.space_id.partition("/")
            space = spaces.find_space(session, owner, name)
            if space is not None and access.can_read(space, who):
                holder = use.space_id
        out.append(
            {
                "index": use.gpu.index,
                "uuid": use.gpu.uuid,
                "name": use.gpu.name,
                "busy": use.space_id is not None,
                "space": holder,
                "deployment": use.deployment_id if holder else None,
            }
        )
    return out


# --- custom domains (native) -----------------------------------------------------------------


@router.get(f"{NATIVE}/domains", tags=["native"])
def list_domains(space: Space = Depends(owned_space)) -> list[dict[str, Any]]:
    """The Space's custom domains and how far each one got (services/domains.py)."""
    return domains.domain_views(space.domains, get_settings())


@router.post(f"{NATIVE}/domains", tags=["native"])
def add_domain(
    body: DomainBody,
    space: Space = Depends(owned_space),
    by: audit.Actor = Depends(acting),
    session: Session = Depends(get_session),
) -> list[dict[str, Any]]:
    """Add a custom domain: it routes once a request for it reaches this node (its DNS)."""
    name = body.domain.strip().lower().rstrip(".")
    if all(d.domain != name for d in space.domains):
        audit.record(session, by, "space.domain.add", space=space.space_id, domain=name)
    domains.add_domain(session, get_settings(), space, body.domain)
    session.refresh(space)
    return domains.domain_views(space.domains, get_settings())


@router.delete(f"{NATIVE}/domains/{{domain}}", tags=["native"])
def remove_domain(
    domain: str,
    space: Space = Depends(owned_space),
    by: audit.Actor = Depends(acting),
    session: Session = Depends(get_session),
) -> list[dict[str, Any]]:
    """Remove a custom domain: it stops routing at once."""
    name = domain.strip().lower().rstrip(".")
    audit.record(session, by, "space.domain.remove", space=space.space_id, domain=name)
    domains.remove_domain(session, get_settings(), space, domain)
    session.refresh(space)
    return domains.domain_views(space.domains, get_settings())


@router.get("/api/v1/gpus/shared", tags=["native"])
def shared_gpus(
    who: Principal = Depends(require_principal), session: Session = Depends(get_session)
) -> dict[str, Any]:
    """The shared GPU pool (zero-a10g): its GPUs, the calls holding them now, the queue, and
    each Space's GPU seconds; private Spaces the caller cannot see show as `null`."""
    return shared_gpus_service.shared_view(session, get_settings(), who)
