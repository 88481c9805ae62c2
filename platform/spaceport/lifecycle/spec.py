"""What a Space's deployment runs: its container spec, built from the database's rows.

Shared by the deployer (a new version) and the standby (a container made ahead for the next
version: the same spec, so it can take the version over).
"""

from __future__ import annotations

import re

from sqlalchemy.orm import Session

from spaceport.auth.crypto import sign
from spaceport.db.models import Space
from spaceport.engine.base import LABEL_COMMIT, ContainerSpec
from spaceport.flavors import Flavor
from spaceport.lifecycle.env import app_env, app_port, node_hosts
from spaceport.lifecycle.storage import volume_name
from spaceport.settings import Settings


def container_name(space: Space, deployment_id: int) -> str:
    slug = re.sub(r"[^a-z0-9_.-]", "-", f"{space.owner}-{space.name}".lower())
    return f"spaceport-{slug}-{deployment_id}"


def container_spec(
    session: Session,
    settings: Settings,
    space: Space,
    dep_id: int,
    image: str,
    commit: str | None,
    flavor: Flavor,
) -> ContainerSpec:
    """How the Space's deployment `dep_id` runs (GPUs are attached later, when booked)."""
    env = app_env(session, settings, space, commit)
    if flavor.shared_gpu:  # who is calling, for the shared-GPU broker (zerogpu/broker.py)
        env.update(
            SPACEPORT_ZERO_GPU_SPACE=space.space_id,
            SPACEPORT_ZERO_GPU_DEPLOYMENT=str(dep_id),
            SPACEPORT_ZERO_GPU_TOKEN=sign(settings, "zero-gpu", f"{space.space_id}:{dep_id}"),
        )
    return ContainerSpec(
        space_id=space.space_id,
        deployment_id=dep_id,
        image=image,
        name=container_name(space, dep_id),
        port=app_port(space),
        env=env,
        shared_gpu=flavor.shared_gpu,
        node_hosts=node_hosts(session, settings, space),
        labels={LABEL_COMMIT: commit or ""},
        cpus=flavor.cpus,
        memory_bytes=flavor.memory_bytes,
        pids=flavor.pids,
        runtime=flavor.runtime,
        egress=(space.card_data or {}).get("egress") is not False,
        data_volume=volume_name(settings, space.id) if space.storage else None,
    )
