"""The admin overview: nodes and their GPUs, the build queue, recent failures and Spaces stuck
in an error stage, read from the database (and the local engine for the node's facts).

One answer for the console's admin page and `spaceport admin` (`GET /api/v1/admin/overview`),
so an operator sees at once what is building, what is stuck, what broke and which Space holds
which GPU.
"""

from __future__ import annotations

import os
import shutil
import socket
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from spaceport.db.models import Build, Deployment, Space, utcnow
from spaceport.engine import make_backend
from spaceport.engine.base import NodeInfo
from spaceport.services import monitoring
from spaceport.services.hardware import node_gpus
from spaceport.services.shared_gpus import shared_view
from spaceport.settings import Settings
from spaceport.stages import BuildStatus, DeploymentStatus, Stage
from spaceport.timefmt import iso_seconds

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


def cluster_node(node: NodeInfo) -> dict[str, Any]:
    """A Swarm node in the local node's shape (its disk is its own: not read from here)."""
    return {
        "name": node.name,
        "role": node.role,
        "state": node.state,
        "availability": node.availability,
        "address": node.address,
        "cpus": node.cpus,
        "memoryBytes": node.memory_bytes,
        "diskFreeBytes": None,
        "diskTotalBytes": None,
        "apps": len(node.spaces),
        "spaces": node.spaces,
        "gpus": [
            {"index": i, "name": "GPU", "uuid": device, "heldBy": held or None}
            for i, (device, held) in enumerate(node.gpus)
        ],
    }


def nodes(settings: Settings, session: Session) -> list[dict[str, Any]]:
    """The machines apps run on: this one, or each node of the cluster (cluster mode)."""
    if settings.runtime != "swarm":
        return [local_node(settings, session)]
    return [cluster_node(n) for n in make_backend(settings).nodes()]


def set_availability(settings: Settings, node: str, availability: str) -> None:
    """Drain a cluster node (its Spaces move without downtime) or take it back."""
    make_backend(settings).set_availability(node, availability)


def build_row(build: Build, space_id: str) -> dict[str, Any]:
    now = utcnow()
    since = build.started_at or build.created_at
    return {
        "id": build.id,
        "space": space_id,
        "sha": build.commit_sha[:12],
        "status": build.status,
        "createdAt": iso_seconds(build.created_at),
        "startedAt": iso_seconds(build.started_at),
        "finishedAt": iso_seconds(build.finished_at),
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
                "at": iso_seconds(b.finished_at or b.created_at),
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
                "at": iso_seconds(d.created_at),
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


def stage_counts(session: Session) -> dict[str, int]:
    """How many Spaces are in each stage."""
    stages: dict[str, int] = {}
    for stage in session.scalars(select(Space.stage)):
        stages[stage] = stages.get(stage, 0) + 1
    return stages


def overview(session: Session, settings: Settings) -> dict[str, Any]:
    """Nodes and GPUs, the build queue, recent failures, the alert conditions that hold now:
    the operator's morning read."""
    stages = stage_counts(session)
    return {
        "nodes": nodes(settings, session),
        "buildQueue": build_queue(session),
        "recentFailures": recent_failures(session),
        "spacesInError": spaces_in_error(session),
        "stages": stages,
        "alerts": monitoring.alerts(session, settings),
        "shared": shared_view(session, settings, None, admin=True)
        if settings.zero_gpu_pool
        else None,
    }
