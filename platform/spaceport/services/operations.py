"""Owner actions on a Space: restart, factory rebuild, pause, stop/start, delete, hardware,
sleep time, storage, and the visitor's wake.

Each action changes the desired state in the database first and answers at once; the runtime
follows in the background (`runtime.jobs`), and the reconciler finishes whatever a crash left
half done.
"""

from __future__ import annotations

from datetime import datetime

import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session

from spaceport import telemetry
from spaceport.db.models import Build, Deployment, Space, utcnow
from spaceport.db.queries import active_deployment
from spaceport.db.session import session_scope
from spaceport.engine import make_backend
from spaceport.engine.base import RuntimeBackendError
from spaceport.errors import Conflict, SpaceportError
from spaceport.flavors import UnknownFlavor
from spaceport.git.repos import delete_repo
from spaceport.lifecycle import jobs, sleeper
from spaceport.lifecycle.deployer import deploy, release_image
from spaceport.lifecycle.desired import Desired, resting_stage
from spaceport.lifecycle.hardware import resolve_flavor, shared_gpu_refusal
from spaceport.lifecycle.locks import space_lock
from spaceport.lifecycle.proxy_routes import sync_routes
from spaceport.lifecycle.retire import retire
from spaceport.lifecycle.storage import TIERS, is_downgrade, volume_name
from spaceport.services import quotas
from spaceport.services.spaces import enqueue_build
from spaceport.settings import Settings
from spaceport.stages import BuildStatus, DeploymentStatus, Stage, starting_stage

log = structlog.get_logger(__name__)


def _start(session: Session, settings: Settings, space: Space) -> None:
    """Run the Space's release again (new container), clearing any crash state."""
    if release_image(session, space) is None:
        raise Conflict(
            f"{space.space_id} has no built version to start yet (stage {space.stage}): "
            "push an app, or wait for its build"
        )
    serving = space.desired == Desired.RUNNING and active_deployment(session, space.id) is not None
    requested = utcnow()
    space.desired = Desired.RUNNING.value
    space.crash_count, space.error_message = 0, None
    space.retry_at = requested  # a start is owed from now on; the deploy that serves it clears it
    space.stage = starting_stage(serving).value
    session.commit()
    jobs.submit(settings, f"start:{space.id}", _deploy_since, settings, space.id, requested)


def _deploy_since(settings: Settings, space_pk: int, requested: datetime) -> bool:
    return deploy(settings, space_pk, requested_at=requested)


def restart(session: Session, settings: Settings, space: Space, *, factory: bool = False) -> None:
    """Same image, new container; `factory`: rebuild the image without cache, then run it."""
    telemetry.count(
        "spaceport_space_restarts", settings=settings, space=space.space_id, cause="owner"
    )
    if not factory:
        start(session, settings, space)
        return
    if not space.head_sha:
        raise Conflict(f"{space.space_id} has no commit to rebuild: push an app first")
    quotas.check_build(session, settings, space)
    space.crash_count, space.retry_at = 0, None
    enqueue_build(session, space, space.head_sha, no_cache=True)
    log.info("space.factory_rebuild", space=space.space_id)


def start(session: Session, settings: Settings, space: Space) -> None:
    """Start (or restart) on the owner's request: a paused, stopped or sleeping Space becomes
    awake, within its namespace's quota."""
    quotas.check_awake(session, settings, space)
    _start(session, settings, space)


RELEASE_WAIT_S = 30.0
"""How long a pause, stop or delete waits for a start in flight to give up (it checks at each
step and every few readiness polls); past it, what exists is removed anyway."""


def hold(session: Session, settings: Settings, space: Space, desired: Desired) -> None:
    """Pause or stop: no container, no route, no GPU, and visitors do not wake it.

    Answers once that is true: the stage says PAUSED (STOPPED) only after the Space's
    containers are gone and its GPUs free; until then it keeps saying what runs.
    """
    space.desired = desired.value
    space.error_message, space.retry_at = None, None
    session.commit()
    sync_routes(settings)  # the route goes first: visitors get the status page, not an error
    release(settings, space.id, space.space_id)
    space.stage = (resting_stage(desired) or Stage.STOPPED).value
    session.commit()
    log.info("space.held", space=space.space_id, desired=desired.value)


def release(settings: Settings, space_pk: int, space_id: str) -> None:
    """Stop every container of a Space that should not run, and free its GPUs, now.

    Taken under the Space's start lock: a start in flight sees that its Space no longer wants
    to run and gives up first (removing what it started), so nothing of it appears later."""
    backend = make_backend(settings)
    with space_lock(settings, space_pk, wait_s=RELEASE_WAIT_S) as lock:
        if lock is None:
            log.warning("space.release_lock_timeout", space=space_id)
        with session_scope() as session:
            live = session.scalars(
                select(Deployment.id).where(
                    Deployment.space_id == space_pk,
                    Deployment.status.in_(
                        (
                            DeploymentStatus.ACTIVE.value,
                            DeploymentStatus.STARTING.value,
                            DeploymentStatus.STANDBY.value,
                        )
                    ),
                )
            ).all()
        for dep_id in live:
            retire(backend, dep_id)
        for state in backend.list(space_id):  # kept ones (a deep sleep's), anything unrecorded
            backend.stop(state.id, timeout=0)


def pause(session: Session, settings: Settings, space: Space) -> None:
    hold(session, settings, space, Desired.PAUSED)


def stop(session: Session, settings: Settings, space: Space) -> None:
    hold(session, settings, space, Desired.STOPPED)


def apply_change(session: Session, settings: Settings, space: Space) -> None:
    """A change of env, hardware or storage: restart a Space that runs (or sleeps). A Space in
    a deep sleep whose namespace has no room left in its quota is not woken by it."""
    if space.desired in (Desired.RUNNING, Desired.SLEEPING) and release_image(session, space):
        if space.desired == Desired.SLEEPING:
            try:
                quotas.check_awake(session, settings, space)
            except quotas.QuotaExceeded:
                session.flush()  # the change applies when it wakes (and the quota allows)
                return
        _start(session, settings, space)
    else:
        session.flush()  # nothing runs: the change applies at the next start


def set_hardware(
    session: Session,
    settings: Settings,
    space: Space,
    flavor: str,
    sleep_time: int | None = None,
) -> None:
    try:
        refusal = shared_gpu_refusal(settings, resolve_flavor(settings, flavor))
    except UnknownFlavor as exc:
        raise SpaceportError(str(exc)) from None
    if refusal is not None:
        raise SpaceportError(refusal)
    changed = space.hardware_requested != flavor
    awake = space.desired in (Desired.RUNNING, Desired.SLEEPING)
    if changed and awake:  # it runs on the new flavor (now, or once its build is done)
        quotas.check_awake(session, settings, space, flavor)
    if sleep_time is not None:
        space.sleep_time = sleep_time
    space.hardware_requested = flavor
    if changed:
        apply_change(session, settings, space)
    else:
        session.commit()


def set_sleep_time(session: Session, space: Space, seconds: int) -> None:
    """Seconds of idleness before the Space sleeps; -1 (or 0): never."""
    space.sleep_time = seconds if seconds > 0 else -1
    space.last_request_at = utcnow()  # the idle timer starts over with the new time
    session.commit()


def set_storage(session: Session, settings: Settings, space: Space, tier: str | None) -> None:
    """Attach (tier) or drop (None: the data is deleted) the Space's /data volume."""
    if tier is not None and tier not in TIERS:
        raise SpaceportError(f"storage tier must be one of {', '.join(TIERS)} (got {tier!r})")
    if (space.storage or None) == tier:
        return
    if is_downgrade(space.storage, tier):
        raise Conflict(
            f"storage can only grow ({space.storage} to {tier} would not hold the data): delete "
            f"it first (DELETE /api/spaces/{space.space_id}/storage, its data is lost), then "
            f"choose {tier}"
        )
    quotas.check_storage(session, settings, space, tier)
    space.storage = tier
    runs = space.desired in (Desired.RUNNING, Desired.SLEEPING)
    apply_change(session, settings, space)
    if tier is None:
        jobs.submit(settings, f"unstore:{space.id}", _drop_volume, settings, space.id, runs)


def move_storage(session: Session, settings: Settings, space: Space, node: str) -> None:
    """Cluster mode: copy a paused or stopped Space's /data to another node, its new home."""
    if not space.storage:
        raise SpaceportError(f"{space.space_id} has no persistent storage to move")
    if space.desired not in (Desired.PAUSED, Desired.STOPPED):
        raise Conflict(
            f"{space.space_id} is {space.stage}: pause or stop it first (its data must not "
            "change while it is copied), then move it and start it again"
        )
    dep = session.scalar(
        select(Deployment)
        .where(Deployment.space_id == space.id)
        .order_by(Deployment.id.desc())
        .limit(1)
    )
    if dep is None:
        raise SpaceportError(f"{space.space_id} never ran: there is no /data disk to move yet")
    try:
        make_backend(settings).move_volume(volume_name(settings, space.id), node, dep.image)
    except RuntimeBackendError as exc:
        raise SpaceportError(str(exc)) from exc


def _drop_volume(settings: Settings, space_pk: int, after_restart: bool) -> None:
    if after_restart:  # the running container still mounts it until its successor starts
        deploy(settings, space_pk, requested_at=utcnow())
    make_backend(settings).node_ops().remove_volume(volume_name(settings, space_pk))


def wake(settings: Settings, space_pk: int) -> bool:
    """Wake a SLEEPING Space for a visitor; returns at once (True when a wake was started).

    A frozen Space serves again within milliseconds, a stopped one once its app answers HTTP.
    Paused and stopped Spaces are not woken: their owner holds them. A Space whose namespace
    has no room left in its quota stays asleep: QuotaExceeded says why.
    """
    with session_scope() as session:
        space = session.get(Space, space_pk)
        if space is not None and space.stage == Stage.SLEEPING:
            quotas.check_awake(session, settings, space)
    return sleeper.wake(settings, space_pk)


def sleep_now(settings: Settings, space: Space, *, deep: bool) -> None:
    """Put a running Space to sleep at once: frozen (light) or stopped (deep)."""
    if not sleeper.put_to_sleep(settings, space.id, deep=deep):
        raise Conflict(f"{space.space_id} is not running (stage {space.stage}): nothing to sleep")


def delete_space(session: Session, settings: Settings, space: Space) -> None:
    """Remove everything: builds in flight, containers, images, volume, routes, repo, the row.

    Answers once the Space's containers, images and volume are gone: a start in flight sees
    its Space gone and gives up first (the delete waits for it under the Space's lock)."""
    space_id, space_pk = space.space_id, space.id
    for build in session.scalars(select(Build).where(Build.space_id == space.id)):
        if build.status in (BuildStatus.QUEUED, BuildStatus.RUNNING):
            build.status = BuildStatus.CANCELLED.value
    rows = list(session.scalars(select(Deployment).where(Deployment.space_id == space.id)))
    # Not a standby's image: that is the compiled dependency stage other Spaces share.
    images = {d.image for d in rows if d.build_id is not None}
    images |= {
        b.image for b in session.scalars(select(Build).where(Build.space_id == space.id)) if b.image
    }
    # Containers taken from the node pool carry no Space label: their rows name them.
    containers = {str(d.container_id) for d in rows if d.container_id}
    owner, name = space.owner, space.name
    session.delete(space)
    session.commit()
    sync_routes(settings)
    backend = make_backend(settings)
    for container in containers | {s.id for s in backend.list(space_id)}:
        backend.stop(container, timeout=0)  # at once: a start stopping its old one goes on now
    with space_lock(settings, space_pk, wait_s=RELEASE_WAIT_S) as lock:
        _remove_runtime(settings, space_pk, space_id, images)
    if lock is None:  # the start in flight did not give up in time: sweep once it is over
        jobs.submit(settings, f"delete:{space_pk}", _sweep, settings, space_pk, space_id, images)
    delete_repo(settings, owner, name)
    log.info("space.deleted", space=space_id)


def _remove_runtime(settings: Settings, space_pk: int, space_id: str, images: set[str]) -> None:
    backend = make_backend(settings)
    for state in backend.list(space_id):
        backend.stop(state.id, timeout=0)
    for image in images:
        backend.node_ops().remove_image(image)
    backend.node_ops().remove_volume(volume_name(settings, space_pk))


def _sweep(settings: Settings, space_pk: int, space_id: str, images: set[str]) -> None:
    with space_lock(settings, space_pk, wait_s=settings.startup_timeout_s + 60):
        _remove_runtime(settings, space_pk, space_id, images)
