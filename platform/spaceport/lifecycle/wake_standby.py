"""Wake standbys: a deep-sleeping Space wakes into a container whose interpreter already
imported its SDK.

A deep-sleep wake restarts the Space's kept container, and most of what the visitor then waits
for is the app's interpreter importing Gradio or Streamlit (docs/benchmarks.md, "What a
deep-sleep wake spends its time on"). So, while the node has memory to spare under
`wake_standby_budget_mib`, the reconciler keeps a standby (lifecycle/standby.py) for the most
recently visited deep-sleeping Spaces: a container of the Space, with its exact spec, from the
image it runs (the code is already in it), whose interpreter imported the SDK at a low CPU
weight and waits. The wake (sleeper.py) then goes through the deployer, which takes the standby
like a code-only push does: it is told to run the app and gets the normal CPU weight; the
stopped container is removed. A Space without one wakes as before.

A wake standby is made for one Space, with its exact spec (its /data, its own variables):
any Space can have one, but only those within the budget do (the most recently visited
first). The Spaces outside it wake into the node pool when theirs fits (node_pool.py:
containers bound to no Space, one per dependency set, used once).

Each standby is counted at `STANDBY_MIB` (a Gradio interpreter that imported Gradio, measured
in docs/benchmarks.md). At most one is started per reconciler pass, at the standby's low CPU
weight, so refilling never competes with serving apps. Standbys of Spaces that fall out of the
budget (others visited more recently, the budget lowered), wake, change or go are removed.
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog
from sqlalchemy import select

from spaceport.build_report import prewarm
from spaceport.db.models import Build, Deployment, Space, utcnow
from spaceport.db.queries import active_deployment, deployments
from spaceport.db.session import session_scope
from spaceport.engine.base import RuntimeBackend, RuntimeBackendError
from spaceport.flavors import UnknownFlavor
from spaceport.lifecycle.desired import Desired
from spaceport.lifecycle.hardware import resolve_flavor
from spaceport.lifecycle.locks import is_locked, space_lock
from spaceport.lifecycle.retire import retire
from spaceport.lifecycle.spec import container_spec
from spaceport.lifecycle.standby import as_standby
from spaceport.settings import Settings
from spaceport.stages import DeploymentStatus, Stage

log = structlog.get_logger(__name__)

STANDBY_MIB = 128
"""What one wake standby is counted at against the budget: a waiting Gradio standby used
102-109 MiB (bench/bench_wake.py, docs/benchmarks.md)."""


@dataclass(frozen=True)
class Sleeper:
    """A deep-sleeping Space that could have a wake standby."""

    space_pk: int
    dep_id: int
    image: str
    container: str | None
    modules: list[str]


def capacity(settings: Settings) -> int:
    """How many wake standbys the node's budget holds."""
    return max(0, settings.wake_standby_budget_mib) // STANDBY_MIB


def deep_sleepers(limit: int, page: int = 100) -> list[Sleeper]:
    """Deep-sleeping Spaces whose app imports an SDK ahead (builder's prewarm.py said which
    modules, and that nothing before them matters), most recently visited first. Read a page
    at a time: a node of a thousand sleeping Spaces reads only as many as the budget holds."""
    found: list[Sleeper] = []
    offset = 0
    while len(found) < limit:
        with session_scope() as session:
            rows = session.execute(
                select(
                    Space.id,
                    Deployment.id,
                    Deployment.image,
                    Deployment.container_id,
                    Build.cache_report,
                )
                .join(Deployment, Deployment.space_id == Space.id)
                .join(Build, Build.id == Deployment.build_id)
                .where(
                    Space.desired == Desired.SLEEPING.value,
                    Space.stage == Stage.SLEEPING.value,
                    Deployment.status == DeploymentStatus.ACTIVE,
                )
                .order_by(Space.last_request_at.desc().nulls_last(), Space.id.desc())
                .limit(page)
                .offset(offset)
            ).all()
        for space_pk, dep_id, image, container, report in rows:
            modules = prewarm(report)
            if modules and image and len(found) < limit:
                found.append(Sleeper(space_pk, dep_id, str(image), container, modules))
        if len(rows) < page:
            break
        offset += page
    return found


def refill(settings: Settings, backend: RuntimeBackend) -> int:
    """Keep wake standbys for the Spaces within the budget, and only for them; start at most
    one per call. Returns how many were started (0 or 1)."""
    wanted = {s.space_pk: s for s in deep_sleepers(capacity(settings))}
    with session_scope() as session:
        rows = session.execute(
            select(Deployment.id, Deployment.space_id, Deployment.image, Deployment.container_id)
            .join(Space, Space.id == Deployment.space_id)
            .where(
                Deployment.status == DeploymentStatus.STANDBY,
                Space.desired == Desired.SLEEPING.value,
            )
        ).all()
    have: set[int] = set()
    for dep_id, space_pk, image, container in rows:
        if is_locked(settings, space_pk):
            continue  # being woken: the deployer may be taking it
        want = wanted.get(space_pk)
        state = backend.inspect(container) if container else None
        if want is not None and image == want.image and state is not None and state.running:
            have.add(space_pk)
            continue
        retire(backend, dep_id, timeout=0)  # out of the budget, stale, or a push's standby
        log.info("wake_standby.removed", space_pk=space_pk, deployment=dep_id)
    for sleeper in wanted.values():
        if sleeper.space_pk in have:
            continue
        kept = backend.inspect(sleeper.container) if sleeper.container else None
        if kept is not None and (kept.running or kept.paused):
            continue  # not stopped yet (frozen, its route dropped): it still holds its memory
        return int(prepare(settings, backend, sleeper))
    return 0


def prepare(settings: Settings, backend: RuntimeBackend, sleeper: Sleeper) -> bool:
    """Start the Space's wake standby: its spec, its image, the SDK imported, waiting."""
    with space_lock(settings, sleeper.space_pk, wait_s=0) as lock:
        if lock is None:
            return False
        with session_scope() as session:
            space = session.get(Space, sleeper.space_pk)
            current = active_deployment(session, sleeper.space_pk)
            if space is None or space.desired != Desired.SLEEPING or current is None:
                return False
            if current.id != sleeper.dep_id or current.image != sleeper.image:
                return False
            if deployments(session, sleeper.space_pk, DeploymentStatus.STANDBY):
                return False  # refill removes the one it has first
            try:
                flavor = resolve_flavor(settings, space.hardware_requested)
            except UnknownFlavor:
                return False
            if flavor.gpus:
                return False  # its devices were given back when it slept
            dep = Deployment(
                space=space,
                image=sleeper.image,
                status=DeploymentStatus.STANDBY.value,
                created_at=utcnow(),
            )
            session.add(dep)
            session.flush()
            spec = container_spec(session, settings, space, dep.id, sleeper.image, None, flavor)
            dep_id = dep.id
        as_standby(spec, sleeper.modules)
        try:
            state = backend.start(spec)
        except RuntimeBackendError as exc:
            log.warning("wake_standby.failed", space_pk=sleeper.space_pk, error=str(exc))
            retire(backend, dep_id, timeout=0, status=DeploymentStatus.FAILED)
            return False
        with session_scope() as session:
            row = session.get(Deployment, dep_id)
            if row is not None:
                row.container_id, row.upstream = state.id, state.upstream
        log.info("wake_standby.started", space_pk=sleeper.space_pk, container=state.name)
        return True


def waiting(backend: RuntimeBackend, space_pk: int, image: str) -> bool:
    """Whether the Space has a running wake standby of `image` (the wake may take it)."""
    with session_scope() as session:
        rows = deployments(session, space_pk, DeploymentStatus.STANDBY)
        found = [(r.image, r.container_id) for r in rows]
    if not found or found[0][0] != image or not found[0][1]:
        return False
    state = backend.inspect(str(found[0][1]))
    return state is not None and state.running
