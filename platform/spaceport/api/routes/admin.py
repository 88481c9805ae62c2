"""Native admin view, `GET /api/v1/admin/overview`: nodes and their GPUs, the build queue, and
recent failures, read from the database (and the local engine for the node's facts).

One answer for the console's admin page and `spaceport admin`, so an operator sees at once
what is building, what is stuck, what broke and which Space holds which GPU.
"""

from __future__ import annotations

import os
import shutil
import socket
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Depends
from sqlalchemy import select
from sqlalchemy.orm import Session

from spaceport.api.deps import Principal, require_principal
from spaceport.api.routes.console_views import iso
from spaceport.api.routes.users import require_admin
from spaceport.db.models import Build, Deployment, Space, utcnow
from spaceport.db.session import get_session
from spaceport.runtime.gpus.allocator import usage as gpu_usage
from spaceport.runtime.hardware import flavor_table
from spaceport.settings import Settings, get_settings
from spaceport.stages import BuildStatus, DeploymentStatus, Stage

router = APIRouter(prefix="/api/v1", tags=["native"])

ERROR_STAGES = (Stage.BUILD_ERROR, Stage.CONFIG_ERROR, Stage.RUNTIME_ERROR)
FAILURE_WINDOW = timedelta(days=7)


def _first_line(text: str | None, limit: int = 240) -> str:
    line = next((ln.strip() for ln in (text or "").splitlines() if ln.strip()), "")
    return line[:limit]


def _memory_bytes() -> int | None:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def node_gpus(settings: Settings) -> list[dict[str, Any]]:
    """This node's GPUs (NVML or config) and the Space holding each (from the allocations)."""
    return [
        {"index": u.gpu.index, "uuid": u.gpu.uuid, "name": u.gpu.name, "heldBy": u.space_id}
        for u in gpu_usage(settings)
    ]


def local_node(settings: Settings, session: Session) -> dict[str, Any]:
    """This node's capacity and what runs on it."""
    disk = shutil.disk_usage(settings.data)
    running = session.scalars(
        select(Deployment).where(Deployment.status == DeploymentStatus.ACTIVE)
    ).all()
    return {
        "name": socket.gethostname(),
        "role": "control plane + builder + runtime",
        "cpus": os.cpu_count(),
        "memoryBytes": _memory_bytes(),
        "diskFreeBytes": disk.free,
        "diskTotalBytes": disk.total,
        "apps": len(running),
        "gpus": node_gpus(settings),
    }


def build_row(build: Build, space_id: str) -> dict[str, Any]:
    now = utcnow()
    since = build.started_at or build.created_at
    return {
        "id": build.id,
        "space": space_id,
        "sha": build.commit_sha[:12],
        "status": build.status,
        "createdAt": iso(build.created_at),
        "startedAt": iso(build.started_at),
        "finishedAt": iso(build.finished_at),
        "waitingS": int((now - since).total_seconds()) if since else None,
        "error": _first_line(build.error_message),
    }


def build_queue(session: Session) -> list[dict[str, Any]]:
    rows = session.execute(
        select(Build, Space.owner, Space.name)
        .join(Space, Space.id == Build.space_id)
        .where(Build.status.in_([BuildStatus.QUEUED, BuildStatus.RUNNING]))
        .order_by(Build.id)
    ).all()
    return [build_row(b, f"{owner}/{name}") for b, owner, name in rows]


def recent_failures(session: Session, limit: int = 20) -> list[dict[str, Any]]:
    """Failed builds and deployments of the last week, and Spaces stuck in an error stage."""
    since = utcnow() - FAILURE_WINDOW
    out: list[dict[str, Any]] = []
    builds = session.execute(
        select(Build, Space.owner, Space.name)
        .join(Space, Space.id == Build.space_id)
        .where(Build.status == BuildStatus.FAILED, Build.created_at >= since)
        .order_by(Build.id.desc())
        .limit(limit)
    ).all()
    for b, owner, name in builds:
        out.append(
            {
                "kind": "build",
                "space": f"{owner}/{name}",
                "at": iso(b.finished_at or b.created_at),
                "sha": b.commit_sha[:12],
                "error": _first_line(b.error_message),
            }
        )
    deps = session.execute(
        select(Deployment, Space.owner, Space.name)
        .join(Space, Space.id == Deployment.space_id)
        .where(Deployment.status == DeploymentStatus.FAILED, Deployment.created_at >= since)
        .order_by(Deployment.id.desc())
        .limit(limit)
    ).all()
    for d, owner, name in deps:
        out.append(
            {
                "kind": "start",
                "space": f"{owner}/{name}",
                "at": iso(d.created_at),
                "sha": (d.commit_sha or "")[:12],
                "error": _first_line(d.error_message),
            }
        )
    out.sort(key=lambda f: f["at"] or "", reverse=True)
    return out[:limit]


def spaces_in_error(session: Session) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(Space).where(Space.stage.in_([s.value for s in ERROR_STAGES])).order_by(Space.id)
    )
    return [
        {"space": s.space_id, "stage": s.stage, "error": _first_line(s.error_message)} for s in rows
    ]


@router.get("/admin/overview")
def overview(
    _: Principal = Depends(require_admin), session: Session = Depends(get_session)
) -> dict[str, Any]:
    """Nodes and GPUs, the build queue, recent failures: the operator's morning read."""
    settings = get_settings()
    stages: dict[str, int] = {}
    for stage in session.scalars(select(Space.stage)):
        stages[stage] = stages.get(stage, 0) + 1
    return {
        "nodes": [local_node(settings, session)],
        "buildQueue": build_queue(session),
        "recentFailures": recent_failures(session),
        "spacesInError": spaces_in_error(session),
        "stages": stages,
    }


def hardware_options(settings: Settings) -> list[dict[str, Any]]:
    """Every flavor with its size and whether this node can give it now (free GPUs)."""
    gpus = node_gpus(settings)
    total = len(gpus)
    free = sum(1 for g in gpus if g["heldBy"] is None)
    out = []
    for flavor in flavor_table(settings).values():
        available = flavor.gpus <= free
        if flavor.gpus:
            note = f"{free} of {total} GPUs free" if total else "this node has no GPU"
        else:
            note = "always available"
        out.append(
            {
                "name": flavor.name,
                "cpus": flavor.cpus,
                "memory": flavor.memory,
                "gpus": flavor.gpus,
                "gpuKind": flavor.gpu_kind,
                "available": available,
                "note": note,
            }
        )
    return out


@router.get("/hardware")
def hardware(_: Principal = Depends(require_principal)) -> list[dict[str, Any]]:
    """Hardware flavors and what this node has free for each."""
    return hardware_options(get_settings())
