"""Leave nothing behind: half-finished starts, containers, volumes and images nobody owns.

A process killed between "create the container" and "record it" (or a Space deleted while its
deploy or build ran) leaves debris only this sweep can see; it runs in every reconciler pass.
"""

from __future__ import annotations

import time
from datetime import timedelta

import structlog
from sqlalchemy import or_, select

from spaceport.db.models import Deployment, Space, utcnow
from spaceport.db.session import session_scope
from spaceport.engine import image_files
from spaceport.engine.base import LABEL_DEPLOYMENT, LABEL_SPACE_PK, RuntimeBackend
from spaceport.lifecycle import node_pool
from spaceport.lifecycle.desired import Desired, resting_stage
from spaceport.lifecycle.locks import is_locked
from spaceport.lifecycle.pacing import EveryFewPasses
from spaceport.lifecycle.retire import retire
from spaceport.lifecycle.storage import volume_name, volume_prefix
from spaceport.settings import Settings
from spaceport.stages import DeploymentStatus, Stage

log = structlog.get_logger(__name__)

GRACE_S = 60  # a stopped deployment's container may still be draining this long
# Standbys (lifecycle/standby.py) too: the reconciler's standby sweep decides when they go.
LIVE = (
    DeploymentStatus.STARTING.value,
    DeploymentStatus.ACTIVE.value,
    DeploymentStatus.STANDBY.value,
)


def fail_stale_starts(settings: Settings, backend: RuntimeBackend) -> int:
    """STARTING deployments whose starter died (its lock lapsed) are failed and cleaned up."""
    with session_scope() as session:
        rows = session.execute(
            select(Deployment.id, Deployment.space_id).where(
                Deployment.status == DeploymentStatus.STARTING
            )
        ).all()
    stale = [dep_id for dep_id, space_pk in rows if not is_locked(settings, space_pk)]
    for dep_id in stale:
        with session_scope() as session:
            dep = session.get(Deployment, dep_id)
            if dep is not None and dep.status == DeploymentStatus.STARTING:
                dep.error_message = "the process starting it stopped; started again"
        retire(backend, dep_id, timeout=0, status=DeploymentStatus.FAILED)
        log.warning("janitor.stale_start", deployment=dep_id)
    return len(stale)


def finish_holds(settings: Settings, backend: RuntimeBackend) -> int:
    """Paused and stopped Spaces whose pause or stop did not finish (the process died during
    it): their deployments are taken out of service and their stage says PAUSED (STOPPED)."""
    held = (Desired.PAUSED.value, Desired.STOPPED.value)
    resting = (Stage.PAUSED.value, Stage.STOPPED.value)
    with session_scope() as session:
        rows = session.execute(
            select(Space.id, Space.desired)
            .outerjoin(
                Deployment,
                (Deployment.space_id == Space.id) & Deployment.status.in_(LIVE),
            )
            .where(
                Space.desired.in_(held),
                Space.updated_at < utcnow() - timedelta(seconds=GRACE_S),  # not one under way
                (Deployment.id.is_not(None)) | Space.stage.not_in(resting),
            )
            .distinct()
        ).all()
    finished = 0
    for space_pk, desired in rows:
        if is_locked(settings, space_pk):
            continue  # a pause or stop is under way
        with session_scope() as session:
            live = session.scalars(
                select(Deployment.id).where(
                    Deployment.space_id == space_pk, Deployment.status.in_(LIVE)
                )
            ).all()
        for dep_id in live:
            retire(backend, dep_id, timeout=0)
        with session_scope() as session:
            space = session.get(Space, space_pk)
            stage = resting_stage(desired)
            if space is not None and space.desired == desired and stage is not None:
                space.stage = stage.value
        finished += 1
        log.warning("janitor.hold_finished", space_pk=space_pk, desired=desired)
    return finished


ORPHAN_SWEEP_PASSES = 3
"""The container and volume sweep runs once every this many passes: it lists every container
of the node, a thousand on a node whose Spaces deep-sleep (most of a pass there:
bench/bench_thousand.py), and an orphan has its grace (GRACE_S) anyway."""
_orphan_sweep = EveryFewPasses(ORPHAN_SWEEP_PASSES, slack=0.9)


def remove_orphans(settings: Settings, backend: RuntimeBackend) -> int:
    """Containers of no live deployment (after a grace); volumes and images of deleted Spaces."""
    if not _orphan_sweep.due(settings):
        return _remove_images_of_deleted(settings, backend)  # on its own schedule
    removed = 0
    cutoff = utcnow() - timedelta(seconds=GRACE_S)
    every = backend.list()
    states = [s for s in every if s.labels.get(LABEL_DEPLOYMENT, "").isdigit()]
    ids = {int(s.labels[LABEL_DEPLOYMENT]) for s in states}
    taken = [s for s in every if node_pool.is_taken(s)]  # named by their rows, not labels
    live = or_(Deployment.status.in_(LIVE), Deployment.stopped_at > cutoff)
    with session_scope() as session:  # one query for every container, not one each
        kept = set(session.scalars(select(Deployment.id).where(Deployment.id.in_(ids), live)))
        kept_taken = (
            set(
                session.scalars(
                    select(Deployment.container_id).where(
                        Deployment.container_id.in_([s.id for s in taken]), live
                    )
                )
            )
            if taken
            else set()
        )
    orphans = [s for s in states if int(s.labels[LABEL_DEPLOYMENT]) not in kept]
    for state in orphans + [s for s in taken if s.id not in kept_taken]:
        backend.stop(state.id, timeout=0)
        removed += 1
        log.info("janitor.container_removed", container=state.name)
    with session_scope() as session:
        space_pks = set(session.scalars(select(Space.id)))
    wanted = {volume_name(settings, pk) for pk in space_pks}
    for name in backend.node_ops().volumes():
        if name.startswith(volume_prefix(settings)) and name not in wanted:
            backend.node_ops().remove_volume(name)
            removed += 1
            log.info("janitor.volume_removed", volume=name)
    return removed + _remove_images_of_deleted(settings, backend)


IMAGE_SWEEP_PASSES = 5
"""The image sweep runs once every this many passes: listing a node's images is most of a pass
where hundreds exist (117 of 256 ms at 1,000 Spaces here, docs/benchmarks.md), and an image
left by a build that ended after its Space's delete can wait a few seconds more."""
_image_sweep = EveryFewPasses(IMAGE_SWEEP_PASSES)


def _remove_images_of_deleted(settings: Settings, backend: RuntimeBackend) -> int:
    """Images built for Spaces that no longer exist (a build that ended after the delete)."""
    if not _image_sweep.due(settings):
        return 0
    with session_scope() as session:
        space_pks = set(session.scalars(select(Space.id)))
    removed, kept, listed_at = 0, set(), time.time()
    for image in backend.node_ops().images():
        pk = image.labels.get(LABEL_SPACE_PK, "")
        if not pk.isdigit() or int(pk) in space_pks:
            kept.add(image.id)
            continue
        for ref in image.tags or [image.id]:  # by tag: an id with several tags is refused
            backend.node_ops().remove_image(ref)
        removed += 1
        log.info("janitor.image_removed", image=image.tags or image.id, space_pk=pk)
    image_files.prune(settings, kept, listed_at)  # their code's archives (node_pool.prepare_wake)
    return removed
