"""Give each GPU Space whole devices, never one device to two Spaces, and free them on stop.

Allocations are rows with a unique (node, device) key: whichever process inserts first owns
the device, so concurrent starts in the API and the workers cannot double-book, and the
bookkeeping survives any restart. A Space that finds too few free devices is queued by the
caller (see `deployer`), oldest first.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from spaceport.db.models import Deployment, GpuAllocation, Space
from spaceport.db.session import session_scope
from spaceport.engine.gpus.inventory import Gpu, discover
from spaceport.settings import Settings
from spaceport.stages import DeploymentStatus


class GpuUnavailable(Exception):
    """Too few free GPUs now (`permanent` False: wait) or ever (`permanent` True: fix config)."""

    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


@dataclass(frozen=True)
class GpuUse:
    gpu: Gpu
    space_id: str | None
    deployment_id: int | None


def _one_node(free: list[Gpu], count: int) -> list[Gpu]:
    """The free devices of the first node with `count` of them (a container's GPUs are on its
    own machine); all of them when none has enough (the count then says it waits)."""
    by_node: dict[str, list[Gpu]] = {}
    for gpu in free:
        by_node.setdefault(gpu.node, []).append(gpu)
    return next((g for g in by_node.values() if len(g) >= count), free)


def whole_gpus(settings: Settings) -> list[Gpu]:
    """The GPUs given whole to one Space at a time: all but the shared pool (zerogpu)."""
    shared = set(settings.zero_gpu_pool)
    return [g for g in discover(settings) if g.uuid not in shared]


def allocate(settings: Settings, space_pk: int, deployment_id: int, count: int) -> list[Gpu]:
    """Book `count` free GPUs for a deployment (lowest index first) or raise GpuUnavailable."""
    if count <= 0:
        return []
    inventory = whole_gpus(settings)
    cluster = settings.runtime == "swarm"
    has, on = (
        ("the cluster's ready nodes have", "in the cluster")
        if cluster
        else (
            "this node has",
            "on this node",
        )
    )
    if count > len(inventory):
        raise GpuUnavailable(
            f"this hardware needs {count} GPU(s) and {has} {len(inventory)}: choose "
            "another hardware flavor (or run Spaceport on a node with more GPUs)",
            permanent=True,
        )
    for _ in range(3):  # lost a race for a device: look again
        with session_scope() as session:
            taken = set(
                session.scalars(
                    select(GpuAllocation.device_uuid).where(GpuAllocation.node == settings.instance)
                )
            )
        free = _one_node([g for g in inventory if g.uuid not in taken], count)
        if len(free) < count:
            raise GpuUnavailable(
                f"waiting for a free GPU: this hardware needs {count}, {len(free)} of "
                f"{len(inventory)} are free {on}; the Space starts as soon as one is "
                "released",
                permanent=False,
            )
        chosen = free[:count]
        try:
            with session_scope() as session:
                for gpu in chosen:
                    session.add(
                        GpuAllocation(
                            node=settings.instance,
                            device_uuid=gpu.uuid,
                            space_id=space_pk,
                            deployment_id=deployment_id,
                        )
                    )
            return chosen
        except IntegrityError:
            continue
    raise GpuUnavailable("waiting for a free GPU (another Space took it first)", permanent=False)


def release(deployment_id: int) -> None:
    with session_scope() as session:
        session.execute(delete(GpuAllocation).where(GpuAllocation.deployment_id == deployment_id))


def release_stale() -> int:
    """Free devices whose deployment no longer runs (a process died between start and stop)."""
    live = (DeploymentStatus.STARTING.value, DeploymentStatus.ACTIVE.value)
    with session_scope() as session:
        stale = session.scalars(
            select(GpuAllocation.id)
            .join(Deployment, Deployment.id == GpuAllocation.deployment_id)
            .where(Deployment.status.not_in(live))
        ).all()
        if stale:
            session.execute(delete(GpuAllocation).where(GpuAllocation.id.in_(stale)))
        return len(stale)


def assigned(deployment_id: int, settings: Settings) -> list[Gpu]:
    """The GPUs a deployment holds, in index order."""
    with session_scope() as session:
        uuids = set(
            session.scalars(
                select(GpuAllocation.device_uuid).where(
                    GpuAllocation.deployment_id == deployment_id
                )
            )
        )
    return [g for g in discover(settings) if g.uuid in uuids]


def usage(settings: Settings) -> list[GpuUse]:
    """Every GPU of this node and who holds it: what the node reports through the API."""
    with session_scope() as session:
        rows = session.execute(
            select(GpuAllocation.device_uuid, GpuAllocation.deployment_id, Space.owner, Space.name)
            .join(Space, Space.id == GpuAllocation.space_id)
            .where(GpuAllocation.node == settings.instance)
        ).all()
    holders = {uuid: (f"{owner}/{name}", dep) for uuid, dep, owner, name in rows}
    out = []
    for gpu in whole_gpus(settings):
        holder, dep = holders.get(gpu.uuid, (None, None))
        out.append(GpuUse(gpu, holder, dep))
    return out
