"""The node pool: containers bound to no Space yet, whose interpreter already imported the SDK,
taken by the Space that starts next on their dependency set.

A standby (standby.py, wake_standby.py) is made for one Space, so it exists only for the
Spaces within its budget. The pool covers the rest: per dependency set its Spaces use (the
image of compiled dependencies their images are built on, builder's compiled_deps.py), the
node keeps containers of that image whose launcher imported the SDK and waits, at a low CPU
weight, with only what every Space of that port gets alike in its environment
(env.platform_env). A Space waking from deep sleep, or deploying a version no standby holds
(its first push included), takes one when it fits: its code is copied in from its image, the
container gets its name and its flavor's limits, and the launcher is told to run the app
with the Space's whole environment (its identity, variables and secrets), set before the
app's first line runs.

Isolation: a pool container is used once. Until it is taken it ran nothing but the import of
public libraries with no Space's environment, files or processes; once taken it is the
Space's own container and never returns to the pool (claimed in Redis, so two starts cannot
take the same one). What cannot change on a running container decides what fits: its image
(the Space's image must be that image plus its code, byte for byte the same dependencies), its
port, process limit, runtime and network (`fit_digest`), no /data, no GPU; and a Space whose
own variables configure a library at import time (`IMPORT_TIME`) starts fresh rather than
in an interpreter that imported without them. Its labels cannot change either: a taken
container keeps `org.spaceport.pool` and no Space label; its deployment row names it (the
janitor leaves it alone, `refill` removes one no row names).
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field, replace

import structlog
from sqlalchemy import select

from spaceport.build_report import compiled_fingerprint, compiled_image, prewarm
from spaceport.db.models import Build, Deployment, Space
from spaceport.db.queries import active_deployment
from spaceport.db.session import session_scope
from spaceport.engine.base import (
    LABEL_DEPLOYMENT,
    ContainerSpec,
    ContainerState,
    RuntimeBackend,
    RuntimeBackendError,
)
from spaceport.flavors import UnknownFlavor
from spaceport.lifecycle import jobs
from spaceport.lifecycle.desired import Desired
from spaceport.lifecycle.env import IDENTITY_KEYS, app_env, app_port, node_hosts, platform_env
from spaceport.lifecycle.hardware import resolve_flavor
from spaceport.lifecycle.locks import claim, is_claimed
from spaceport.lifecycle.standby import (
    APP_DIR,
    GO_FILE,
    LABEL_AHEAD,
    LAUNCHER,
    STANDBY_CPU_SHARES,
    STARTING_CPU_SHARES,
    built_on,
    runs_as_if_fresh,
)
from spaceport.settings import Settings
from spaceport.stages import DeploymentStatus

log = structlog.get_logger(__name__)

LABEL_POOL = "org.spaceport.pool"  # the compiled-dependency image it runs
LABEL_FIT = "org.spaceport.fit"  # `fit_digest` of what it was made for
PREFIX = "spaceport-pool-"  # the name of one not taken yet (taking renames it)
NO_ROW = "pool"  # its deployment label: no row when it starts, and the label cannot change
POOL_MIB = 128
"""What one pool container is counted at: a waiting Gradio launcher used 102-109 MiB
(bench/bench_wake.py, docs/benchmarks.md)."""
CLAIM_S = 600  # longer than any take: a taken container is never offered again
DEMAND_TTL_S = 30.0  # the Spaces' dependency sets are read again after this long

IMPORT_TIME = re.compile(
    r"^(GRADIO_|STREAMLIT_|HF_|HUGGINGFACE_|HUGGING_FACE_|TRANSFORMERS_|DIFFUSERS_|TORCH|"
    r"PYTORCH_|TF_|JAX_|XLA_|OMP_|MKL_|OPENBLAS_|NUMEXPR_|NUMBA_|CUDA|NVIDIA_|PYTHON|LD_|MPL|"
    r"XDG_|LC_|SSL_|REQUESTS_CA|CURL_CA)"
    r"|^(PATH|HOME|LANG|LANGUAGE|TZ|TMPDIR)$"
    r"|^(HTTPS?_PROXY|NO_PROXY|ALL_PROXY)$",
    re.IGNORECASE,
)
"""Variables the SDKs and their own dependencies may read when imported (not only when the
app calls them): a Space that sets one of its own starts in a fresh interpreter."""
SDK_MODULES = frozenset({"gradio", "streamlit"})
"""Of what a pool container imports, what IMPORT_TIME covers: a Space whose app imports other
libraries ahead (builder's prewarm.py) takes one only when it has no variables of its own
(any library may read any variable at import: an API key, a cache path)."""


@dataclass(frozen=True)
class Key:
    """What a pool container is interchangeable by."""

    image: str  # the compiled dependency set's image
    modules: tuple[str, ...]  # what its launcher imported, in order
    fit: str  # fit_digest


@dataclass
class Shape:
    """How a pool container of a key is made (from the first of its Spaces)."""

    port: int
    pids: int
    runtime: str | None
    egress: bool
    cpus: float
    memory_bytes: int
    sleeping: int = 0  # its Spaces deep asleep (who will wake)
    spaces: int = 0


@dataclass
class _Demand:
    at: float = 0.0
    keys: list[tuple[Key, Shape]] = field(default_factory=list)


@dataclass
class _Off:
    checked: bool = False  # the pool is off and this node has none of its containers


_demand, _off = _Demand(), _Off()


def fit_digest(settings: Settings, port: int, pids: int, runtime: str | None, egress: bool) -> str:
    """What a running container cannot change and a Space's spec must equal, and the common
    environment its launcher imported with (a node setting, e.g. the public URL, may change)."""
    fields = {
        "port": port,
        "pids": pids,
        "runtime": runtime,
        "egress": egress,
        "env": platform_env(settings, port),
    }
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]


def env_fits(settings: Settings, port: int, env: dict[str, str], modules: list[str]) -> bool:
    """Whether an app with `env` runs in a pool container that imported `modules` with
    `platform_env` as it would in a fresh interpreter."""
    common = platform_env(settings, port)
    if any(env.get(k) != v for k, v in common.items()):
        return False  # the Space changed one of them (a variable of its own)
    own = [k for k in env if k not in common and k not in IDENTITY_KEYS]
    if any(m.split(".")[0] not in SDK_MODULES for m in modules):
        return not own
    return not any(IMPORT_TIME.match(k) for k in own)


def _key(settings: Settings, space: Space, report: dict | None) -> tuple[Key, Shape] | None:
    """The pool key a Space's deployment would take from (None: it takes none)."""
    fp, modules = compiled_fingerprint(report), prewarm(report)
    if fp is None or not modules or space.storage:
        return None
    try:
        flavor = resolve_flavor(settings, space.hardware_requested)
    except UnknownFlavor:
        return None
    if flavor.gpus or flavor.shared_gpu:
        return None
    port = app_port(space)
    egress = (space.card_data or {}).get("egress") is not False
    fit = fit_digest(settings, port, flavor.pids, flavor.runtime, egress)
    key = Key(compiled_image(fp), tuple(modules), fit)
    return key, Shape(port, flavor.pids, flavor.runtime, egress, flavor.cpus, flavor.memory_bytes)


def demand(settings: Settings, backend: RuntimeBackend) -> list[tuple[Key, Shape]]:
    """The keys the node's Spaces would take from, those with the most deep-sleeping Spaces
    first (then the most Spaces), whose image the node has (an old dependency set's tag is
    pruned: builder's compiled_deps.py): read at most every DEMAND_TTL_S."""
    if time.monotonic() - _demand.at < DEMAND_TTL_S and _demand.at:
        return _demand.keys
    found: dict[Key, Shape] = {}
    with session_scope() as session:
        rows = session.execute(
            select(Space, Build.cache_report)
            .join(Deployment, Deployment.space_id == Space.id)
            .join(Build, Build.id == Deployment.build_id)
            .where(
                Space.desired.in_((Desired.RUNNING.value, Desired.SLEEPING.value)),
                Deployment.status == DeploymentStatus.ACTIVE,
            )
        ).all()
        for space, report in rows:
            keyed = _key(settings, space, report)
            if keyed is None:
                continue
            shape = found.setdefault(*keyed)
            shape.spaces += 1
            shape.sleeping += space.desired == Desired.SLEEPING
    present = {k.image for k in found if backend.node_ops().image_layers(k.image)}
    ranked = sorted(
        ((k, v) for k, v in found.items() if k.image in present),
        key=lambda kv: (-kv[1].sleeping, -kv[1].spaces, kv[0].image),
    )
    _demand.at, _demand.keys = time.monotonic(), ranked
    return ranked


def wanted(settings: Settings, backend: RuntimeBackend) -> Counter[Key]:
    """How many pool containers of each key the budget holds: one per key in rank order,
    then a second each, and so on."""
    slots = max(0, settings.pool_budget_mib) // POOL_MIB
    keys = [k for k, _ in demand(settings, backend)]
    out: Counter[Key] = Counter()
    while slots > 0 and keys:
        for key in keys:
            if slots == 0:
                break
            out[key] += 1
            slots -= 1
    return out


def _key_of(state: ContainerState) -> Key:
    ahead = tuple(m for m in state.labels.get(LABEL_AHEAD, "").split(",") if m)
    return Key(state.labels.get(LABEL_POOL, ""), ahead, state.labels.get(LABEL_FIT, ""))


def members(backend: RuntimeBackend) -> list[ContainerState]:
    """The node's pool containers not taken yet."""
    return [s for s in backend.list(label=LABEL_POOL) if not is_taken(s)]


def refill(settings: Settings, backend: RuntimeBackend) -> int:
    """Keep the pool the budget holds, and nothing else: remove what no key wants (or that
    stopped), start at most one missing container per call. Returns how many were started
    (0 or 1). Taken containers are the janitor's (lifecycle/janitor.py, by their rows)."""
    if settings.pool_budget_mib <= 0 and _off.checked:
        return 0  # off, and nothing of it was left on this node: no engine call per pass
    want = wanted(settings, backend) if settings.pool_budget_mib > 0 else Counter[Key]()
    states = members(backend)
    _off.checked = settings.pool_budget_mib <= 0 and not states
    have: Counter[Key] = Counter()
    for state in states:
        key = _key_of(state)
        if state.running and have[key] < want[key]:
            have[key] += 1
            continue
        if claim(settings, state.id, CLAIM_S):  # never one a start is taking
            backend.stop(state.id, timeout=0)
            log.info("pool.removed", container=state.name)
    for key, shape in demand(settings, backend) if want else []:
        if have[key] < want[key] and _start(settings, backend, key, shape):
            return 1
    return 0


def is_taken(state: ContainerState) -> bool:
    """A container of the pool that a Space took (its row names it, not its labels)."""
    return LABEL_POOL in state.labels and not state.name.startswith(PREFIX)


def _start(settings: Settings, backend: RuntimeBackend, key: Key, shape: Shape) -> bool:
    """Start one pool container of `key`: the image, the launcher importing its modules at a
    low CPU weight, the platform's common environment and nothing of any Space."""
    if not backend.node_ops().image_layers(key.image):
        return False  # not compiled on this node (yet)
    with session_scope() as session:
        hosts = node_hosts(session, settings, None)
    spec = ContainerSpec(
        space_id="",
        deployment_id=0,
        image=key.image,
        name=f"{PREFIX}{uuid.uuid4().hex[:12]}",
        port=shape.port,
        env=platform_env(settings, shape.port),
        labels={
            LABEL_DEPLOYMENT: NO_ROW,  # the janitor's sweep by row ids leaves it alone
            LABEL_POOL: key.image,
            LABEL_AHEAD: ",".join(key.modules),
            LABEL_FIT: key.fit,
        },
        cpus=shape.cpus,
        memory_bytes=shape.memory_bytes,
        pids=shape.pids,
        runtime=shape.runtime,
        egress=shape.egress,
        node_hosts=hosts,
        command=["python", "-c", LAUNCHER, *key.modules],
        cpu_shares=STANDBY_CPU_SHARES,
    )
    try:
        state = backend.start(spec)
    except RuntimeBackendError as exc:
        log.warning("pool.failed", image=key.image, error=str(exc))
        return False
    log.info("pool.started", container=state.name, image=key.image, modules=key.modules)
    return True


def take(
    settings: Settings, backend: RuntimeBackend, dep_id: int, spec: ContainerSpec
) -> ContainerState | None:
    """Move the planned deployment (`dep_id`, `spec`) into a pool container that fits; None
    when none does. The caller holds the Space's lock and records the container."""
    if settings.pool_budget_mib <= 0 or spec.command is not None:
        return None
    if spec.gpus or spec.shared_gpu or spec.data_volume:
        return None
    with session_scope() as session:
        dep = session.get(Deployment, dep_id)
        build = session.get(Build, dep.build_id) if dep is not None and dep.build_id else None
        report = dict(build.cache_report or {}) if build is not None else {}
    fp, modules = compiled_fingerprint(report), prewarm(report)
    if fp is None or not modules or not env_fits(settings, spec.port, spec.env, modules):
        return None
    fit = fit_digest(settings, spec.port, spec.pids, spec.runtime, spec.egress)
    key = Key(compiled_image(fp), tuple(modules), fit)
    for state in _fitting(settings, backend, key, spec.image):
        if claim(settings, state.id, CLAIM_S):
            with session_scope() as session:  # named by its row before it is renamed
                row = session.get(Deployment, dep_id)
                if row is None:
                    return None  # (claimed, untouched: offered again once the claim ends)
                row.container_id = state.id
            return _move_in(backend, state, spec)
    return None


def _fitting(
    settings: Settings, backend: RuntimeBackend, key: Key, image: str | None
) -> list[ContainerState]:
    """The pool's running, unclaimed containers of `key`, oldest first: the one most likely
    done importing (a refill may have just started another). With `image`: [] unless it is
    that dependency set plus its code (without: the caller only asks whether some may fit)."""
    found = [
        s
        for s in sorted(members(backend), key=lambda s: s.created)
        if s.running
        and s.labels.get(LABEL_POOL) == key.image
        and s.labels.get(LABEL_FIT) == key.fit
        and runs_as_if_fresh(list(_key_of(s).modules), list(key.modules))
        and not is_claimed(settings, s.id)
    ]
    if image is not None and found and not same_dependencies(backend, image, key.image):
        return []
    return found


def same_dependencies(backend: RuntimeBackend, image: str, compiled: str) -> bool:
    """`image` is the dependency set of `compiled` plus layers: built on it, or (a build made
    before the set was compiled) on the stage it compiled, whose bytecode is all it adds."""
    node = backend.node_ops()
    base, layers = node.image_layers(compiled), node.image_layers(image)
    return built_on(layers, base) or built_on(layers, base[:-1])  # (without the compile step)


def _move_in(
    backend: RuntimeBackend, state: ContainerState, spec: ContainerSpec
) -> ContainerState | None:
    """The Space's limits and code and environment into a claimed pool container, and the
    launcher told to run the app; its name follows while the app starts (the visitor waits for
    the app, not for it). Five engine calls (an image's two inspects, the limits, one archive
    once the code is kept, the name): on a busy node each takes tens of milliseconds."""
    node = backend.node_ops()
    t0 = time.monotonic()
    try:
        go = json.dumps({"argv": node.image_command(spec.image), "env": spec.env}).encode()
        t1 = time.monotonic()
        # Its limits before its code runs; the name (the last step) makes it no longer the
        # pool's: until then the claim keeps it from being offered or removed.
        node.set_limits(state.id, spec.cpus, spec.memory_bytes, STARTING_CPU_SHARES)
        t2 = time.monotonic()
        node.copy_from_image(spec.image, APP_DIR, state.id, then={GO_FILE: go})
        t3 = time.monotonic()
        node.rename(state.id, spec.name)
    except Exception as exc:  # half moved in: it is no one's now; the deploy starts fresh
        log.warning("pool.take_failed", container=state.name, error=repr(exc))
        backend.stop(state.id, timeout=0)
        return None
    log.info(
        "pool.taken",
        container=spec.name,
        space=spec.space_id,
        command_ms=round((t1 - t0) * 1000),
        limits_ms=round((t2 - t1) * 1000),
        code_and_go_ms=round((t3 - t2) * 1000),
        name_ms=round((time.monotonic() - t3) * 1000),
    )
    return replace(state, name=spec.name)


def prepare_wake(settings: Settings, backend: RuntimeBackend, space_pk: int, image: str) -> None:
    """A Space went to deep sleep: if a pool container could serve its wake, keep its code's
    archive ready (engine/image_files.py), so the wake writes it with one engine call. On the
    background thread."""
    if settings.pool_budget_mib > 0:
        key = f"keep-code:{image}"
        jobs.submit_background_once(settings, key, _keep_code, settings, backend, space_pk, image)


def _keep_code(settings: Settings, backend: RuntimeBackend, space_pk: int, image: str) -> None:
    if _eligible(settings, space_pk) is None:
        return
    try:
        backend.node_ops().keep_image_dir(image, APP_DIR)
    except RuntimeBackendError as exc:  # the wake reads it from the image then
        log.info("pool.code_not_kept", image=image, error=str(exc))


def ready_for(settings: Settings, backend: RuntimeBackend, space_pk: int) -> bool:
    """Whether a wake of the Space may take a pool container now: the wake then deploys (its
    stopped container stays its version until the new one serves: if the take does not work
    out after all, a fresh container starts) instead of restarting the stopped one. Reads
    the database and one list of the pool; `take` checks the image's layers."""
    if settings.pool_budget_mib <= 0:
        return False
    key = _eligible(settings, space_pk)
    return key is not None and bool(_fitting(settings, backend, key, None))


def _eligible(settings: Settings, space_pk: int) -> Key | None:
    """The pool key of the Space's release when a pool container could run it (its SDK
    imported ahead, its environment one the container can take); None when none could."""
    with session_scope() as session:
        space = session.get(Space, space_pk)
        dep = active_deployment(session, space_pk)
        build = session.get(Build, dep.build_id) if dep is not None and dep.build_id else None
        if space is None or build is None:
            return None
        keyed = _key(settings, space, build.cache_report)
        env = app_env(session, settings, space, None)
    if keyed is None or not env_fits(settings, keyed[1].port, env, list(keyed[0].modules)):
        return None
    return keyed[0]


def owners(backend: RuntimeBackend) -> dict[str, str]:
    """The Space each taken pool container serves (they carry no Space label), by container."""
    taken = [s.id for s in backend.list(label=LABEL_POOL) if is_taken(s)]
    if not taken:
        return {}
    with session_scope() as session:
        rows = session.execute(
            select(Deployment.container_id, Space.owner, Space.name)
            .join(Space, Space.id == Deployment.space_id)
            .where(Deployment.container_id.in_(taken))
        ).all()
    return {str(c): f"{o}/{n}" for c, o, n in rows}


def deployments_of(container_ids: list[str]) -> list[int]:
    """The deployment rows naming these containers (a taken pool container's label names
    none)."""
    with session_scope() as session:
        return list(
            session.scalars(select(Deployment.id).where(Deployment.container_id.in_(container_ids)))
        )
