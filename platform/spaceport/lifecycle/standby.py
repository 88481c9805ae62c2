"""Standby containers: a Space's next code-only version starts in an interpreter that already
imported its SDK.

A code-only push builds in under a second; what the owner then waits for is the app's own
start, and most of a Gradio app's start is `import gradio` (3-4 s here). So after a deploy the
worker prepares a standby (builder's standby_job.py): a container of the Space, with its
exact spec (env, limits, /data, network), from the image of its compiled dependencies (the
image its next code-only version is built on), whose interpreter imports the SDK at a low CPU
weight and then waits. The next deploy takes it when it fits (`take`): same spec, and the new
image is that image plus layers (so the dependencies are the same bytes). The new version's
code is copied in, the launcher is told to run it, and the container gets the normal CPU
weight. Anything else (new dependencies, a changed variable, a GPU Space) starts a fresh
container as before. Standbys are deployment rows with status `standby`; the reconciler
removes them after their lifetime (`standby_ttl_s` from the row's creation) or when their
Space stops running. A container's labels cannot change, and a standby becomes the Space's app:
so it carries only labels that stay true (its Space, deployment row, spec digest), never one
that says "standby" (the row's status says it).

What the app sees is the same as `python app.py`: its file runs as `__main__` with its
directory first on `sys.path`, and variables that differ per version (the commit) are set
before it runs. Only apps whose code before the SDK import cannot matter get a standby
(builder's prewarm.py).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from datetime import timedelta

import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session

from spaceport.build_report import prewarm
from spaceport.db.models import Build, Deployment, Space, utcnow
from spaceport.db.queries import active_deployment, deployments
from spaceport.db.session import session_scope
from spaceport.engine.base import (
    ContainerSpec,
    ContainerState,
    RuntimeBackend,
    RuntimeBackendError,
)
from spaceport.lifecycle.desired import Desired
from spaceport.lifecycle.locks import is_locked, space_lock
from spaceport.lifecycle.retire import retire
from spaceport.lifecycle.spec import container_spec
from spaceport.settings import Settings
from spaceport.stages import DeploymentStatus, Stage

log = structlog.get_logger(__name__)

LABEL_SPEC = "org.spaceport.spec"  # the digest of the spec it was made for (`spec_digest`)
LABEL_AHEAD = "org.spaceport.ahead"  # the modules it imported, in order (builder's prewarm.py)
APP_DIR = "/home/user/app"
GO_FILE = "/tmp/.spaceport-go"
STANDBY_CPU_SHARES = 64  # while importing: far behind every serving app (1024)
SERVING_CPU_SHARES = 1024
STARTING_CPU_SHARES = 4096
"""A taken container's weight while its app starts: someone waits for it (a visitor's wake, an
owner's push), and on a busy node the serving apps would otherwise share the CPU with it
equally. The deployer sets SERVING_CPU_SHARES once it serves."""
VOLATILE_ENV = ("SPACE_COMMIT_SHA",)  # differs per version; given to the launcher instead
STARTING = (Stage.APP_STARTING.value, Stage.RUNNING_APP_STARTING.value)
LOCK_WAIT_S = 10.0

# The standby's command: `python -c LAUNCHER module...`. Imports the modules, waits for the
# go file (written by `take`; still there when the container restarts), then runs the app as
# its image's CMD would have.
LAUNCHER = r"""
import importlib, json, os, runpy, sys, time
t0 = time.monotonic()
for name in sys.argv[1:]:
    try:
        importlib.import_module(name)
    except Exception as exc:
        print(f"Spaceport standby: importing {name} failed ({exc})", file=sys.stderr)
print(f"Spaceport standby: {' '.join(sys.argv[1:])} imported in "
      f"{time.monotonic() - t0:.2f} s, waiting for the app", file=sys.stderr, flush=True)
while True:  # (the engine writes the file in place: it may exist, not yet whole)
    try:
        with open(GO_FILE) as f:
            go = json.load(f)
        break
    except (OSError, ValueError):
        time.sleep(0.02)
os.environ.update(go["env"])
argv = go["argv"]
os.chdir(APP_DIR)
if len(argv) == 2 and argv[0] in ("python", "python3") and argv[1].endswith(".py"):
    sys.argv = [argv[1]]
    sys.path[0] = os.path.dirname(os.path.abspath(argv[1]))
    runpy.run_path(argv[1], run_name="__main__")
else:
    from importlib.metadata import entry_points
    found = list(entry_points(group="console_scripts", name=argv[0]))
    if not found:
        os.execvp(argv[0], argv)
    sys.argv = argv
    sys.exit(found[0].load()())
""".replace("GO_FILE", repr(GO_FILE)).replace("APP_DIR", repr(APP_DIR))


def spec_digest(spec: ContainerSpec) -> str:
    """What must be equal for a standby to run a new version: everything but the image, the
    command, the names and the per-version variables. The node's host names (`node_hosts`:
    other Spaces it may call) are left out too: every new public Space adds one, and a standby
    made minutes ago resolves all but the newest, as a running app does until it restarts."""
    fields = asdict(spec)
    for key in ("image", "name", "deployment_id", "command", "cpu_shares", "labels", "node_hosts"):
        fields.pop(key, None)
    fields["env"] = {k: v for k, v in spec.env.items() if k not in VOLATILE_ENV}
    return hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()


def as_standby(spec: ContainerSpec, modules: list[str]) -> None:
    """Make `spec` a standby's: the launcher imports `modules` at a low CPU weight and waits;
    its labels say what it was made for and what it imported (both stay true)."""
    digest = spec_digest(spec)
    spec.command = ["python", "-c", LAUNCHER, *modules]
    spec.cpu_shares = STANDBY_CPU_SHARES
    spec.labels = {LABEL_SPEC: digest, LABEL_AHEAD: ",".join(modules)}


def imported_ahead(state: ContainerState) -> list[str] | None:
    """The modules a standby imported, in order (None: made before standbys said so)."""
    value = state.labels.get(LABEL_AHEAD)
    return None if value is None else [m for m in value.split(",") if m]


def runs_as_if_fresh(ahead: list[str] | None, wanted: list[str]) -> bool:
    """An app whose leading imports are `wanted` runs in a standby that imported `ahead` as it
    would in a fresh interpreter: what it imported is the start of what the app imports
    first, in the same order."""
    return bool(wanted) and ahead is not None and wanted[: len(ahead)] == ahead


def _wanted(session: Session, dep_id: int) -> list[str]:
    """The modules the build a deployment runs may have imported ahead (none: no standby)."""
    dep = session.get(Deployment, dep_id)
    build = session.get(Build, dep.build_id) if dep is not None and dep.build_id else None
    return prewarm(build.cache_report if build is not None else None)


def prepare(
    settings: Settings, space_pk: int, build_id: int, image: str, modules: list[str]
) -> bool:
    """Start a standby of the Space, which is serving `build_id` (else nothing is done)."""
    from spaceport.engine import make_backend
    from spaceport.flavors import UnknownFlavor
    from spaceport.lifecycle.hardware import resolve_flavor

    backend = make_backend(settings)

    def skipped(why: str) -> bool:
        log.info("standby.not_started", space_pk=space_pk, build=build_id, why=why)
        return False

    # A short wait: the sleeper or compressor may hold the Space for a moment; a deploy under
    # way holds it longer, and its own standby follows it.
    with space_lock(settings, space_pk, wait_s=LOCK_WAIT_S) as lock:
        if lock is None:
            return skipped("the Space is busy (a deploy under way)")
        with session_scope() as session:
            space = session.get(Space, space_pk)
            current = active_deployment(session, space_pk)
            if space is None or space.desired != Desired.RUNNING or current is None:
                return skipped("the Space does not run")
            if current.build_id != build_id:
                return skipped(f"a newer version serves (build {current.build_id})")
            try:
                flavor = resolve_flavor(settings, space.hardware_requested)
            except UnknownFlavor:
                return skipped("unknown hardware")
            if flavor.gpus:  # a standby would hold devices the serving version needs
                return skipped("a GPU flavor")
            old = [
                (o.id, o.container_id, o.image)
                for o in deployments(session, space_pk, DeploymentStatus.STANDBY)
            ]
            dep = Deployment(
                space=space, image=image, status=DeploymentStatus.STANDBY.value, created_at=utcnow()
            )
            session.add(dep)
            session.flush()
            spec = container_spec(session, settings, space, dep.id, image, None, flavor)
            dep_id = dep.id
        as_standby(spec, modules)  # no commit: the one it will run is not known yet
        for old_id, container, old_image in old:
            state = backend.inspect(container) if container else None
            same = state is not None and state.labels == {**state.labels, **spec.labels}
            if same and old_image == image and state is not None and state.running:
                _drop_row(dep_id)  # the one it has is still right
                return False
            retire(backend, old_id, timeout=0)  # one standby per Space: the newest
        try:
            state = backend.start(spec)
        except RuntimeBackendError as exc:
            log.warning("standby.failed", space_pk=space_pk, error=str(exc))
            retire(backend, dep_id, timeout=0, status=DeploymentStatus.FAILED)
            return False
        with session_scope() as session:
            row = session.get(Deployment, dep_id)
            if row is not None:
                row.container_id, row.upstream = state.id, state.upstream
        log.info("standby.started", space_pk=space_pk, container=state.name, image=image)
        return True


def _drop_row(dep_id: int) -> None:
    with session_scope() as session:
        row = session.get(Deployment, dep_id)
        if row is not None:
            session.delete(row)


def take(
    backend: RuntimeBackend, space_pk: int, dep_id: int, spec: ContainerSpec
) -> tuple[int, ContainerState] | None:
    """Move the planned version (`dep_id`, `spec`) into the Space's standby, if one fits:
    (the deployment id it runs under now, its container). The caller holds the Space's lock.

    A standby of the planned image itself (a wake standby, wake_standby.py) already holds the
    code: it is only told to run it."""
    with session_scope() as session:
        rows = deployments(session, space_pk, DeploymentStatus.STANDBY)
        if not rows or not rows[0].container_id or spec.command is not None:
            return None
        standby_id, container, image = rows[0].id, str(rows[0].container_id), rows[0].image
        wanted = _wanted(session, dep_id)
    state = backend.inspect(container)
    fits = (
        state is not None
        and state.running
        and state.labels.get(LABEL_SPEC) == spec_digest(spec)
        and runs_as_if_fresh(imported_ahead(state), wanted)
        and (image == spec.image or extends(backend, spec.image, image))
    )
    if not fits or state is None:
        retire(backend, standby_id, timeout=0)  # stale: a fresh one follows this deploy
        return None
    try:
        node = backend.node_ops()  # node-local: the standby runs on this node
        argv = node.image_command(spec.image)
        if image != spec.image:  # a wake standby (wake_standby.py) runs its image's code
            node.copy_from_image(spec.image, APP_DIR, container)
        env = {k: spec.env[k] for k in VOLATILE_ENV if k in spec.env}
        node.put_file(container, GO_FILE, json.dumps({"argv": argv, "env": env}).encode())
        backend.took(container, spec)  # (a cluster's next task of it runs this version)
        node.set_cpu_shares(container, STARTING_CPU_SHARES)
    except RuntimeBackendError as exc:
        log.warning("standby.take_failed", container=state.name, error=str(exc))
        retire(backend, standby_id, timeout=0)
        return None
    with session_scope() as session:
        row, planned = session.get(Deployment, standby_id), session.get(Deployment, dep_id)
        if row is None or planned is None:
            return None
        row.status, row.image, row.commit_sha = (
            DeploymentStatus.STARTING.value,
            planned.image,
            planned.commit_sha,
        )
        row.build_id, row.created_at, row.error_message = planned.build_id, planned.created_at, None
        session.delete(planned)
    return standby_id, state


def extends(backend: RuntimeBackend, image: str, base: str) -> bool:
    """`image` is `base` plus layers: the same dependencies, byte for byte, and more."""
    return built_on(backend.node_ops().image_layers(image), backend.node_ops().image_layers(base))


def built_on(layers: list[str], base: list[str]) -> bool:
    """An image of `layers` is one of `base` layers plus more (neither may be empty)."""
    return bool(base) and len(layers) > len(base) and layers[: len(base)] == base


def sweep(settings: Settings, backend: RuntimeBackend) -> int:
    """Remove standbys past their lifetime, of Spaces that no longer run or sleep (a sleeping
    Space gives its memory back, unless the node keeps wake standbys: wake_standby.py), or
    whose container is gone. A Space whose deploy is under way is left alone (it may be taking
    its standby)."""
    removed = 0
    with session_scope() as session:
        rows = session.execute(
            select(
                Deployment.id,
                Deployment.space_id,
                Deployment.container_id,
                Deployment.created_at,
                Space.desired,
                Space.stage,
            )
            .join(Space, Space.id == Deployment.space_id)
            .where(Deployment.status == DeploymentStatus.STANDBY)
        ).all()
    for dep_id, space_pk, container, created_at, desired, stage in rows:
        if is_locked(settings, space_pk):
            continue
        if desired == Desired.SLEEPING and settings.wake_standby_budget_mib > 0:
            continue  # deep asleep: wake_standby.refill decides which keep one
        if desired == Desired.RUNNING and stage in STARTING:
            continue  # a visitor's wake, before it holds the lock: it may take its standby
        state = backend.inspect(container) if container else None
        expires = created_at + timedelta(seconds=settings.standby_ttl_s)
        if (
            desired == Desired.RUNNING
            and stage != Stage.SLEEPING
            and state is not None
            and state.running
            and expires > utcnow()
        ):
            continue
        retire(backend, dep_id, timeout=0)
        removed += 1
        log.info("standby.removed", deployment=dep_id)
    return removed
