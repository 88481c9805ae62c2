"""Quotas: an admin's limits per namespace (a user or an organization) and what it uses now.

A limit is checked only where usage would grow: a new Space (create, duplicate, move in), a
Space that becomes awake (start, restart, unpause, wake, a build of a paused Space) or gets
bigger hardware, more storage, a build. Nothing running is ever stopped because of a quota:
a limit lowered below the usage only blocks what would add to it. The refusal
(`QuotaExceeded`, a 403) names the limit, the usage, the Spaces behind it and what to do.

"Awake" is what holds CPU, memory and GPUs: a Space the runtime keeps running (building,
starting, serving, or frozen in a light sleep), not one in a deep sleep, paused or stopped, or
with nothing to run.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from spaceport.db.models import (
    Build,
    Deployment,
    GpuAllocation,
    Organization,
    Quota,
    Space,
    User,
    utcnow,
)
from spaceport.errors import Forbidden, SpaceportError
from spaceport.flavors import Flavor, UnknownFlavor
from spaceport.git.repos import repo_path
from spaceport.lifecycle.desired import Desired
from spaceport.lifecycle.hardware import resolve_flavor
from spaceport.settings import QuotaConfig, Settings
from spaceport.stages import DeploymentStatus, Stage

LIMITS = tuple(QuotaConfig.model_fields)  # spaces, cpu, memory_gb, gpus, storage_gb, builds...
INTEGER_LIMITS = frozenset({"spaces", "gpus", "builds_per_hour"})
OPTIONS = {k: "--" + k.replace("_", "-") for k in LIMITS}  # the CLI's flag for each limit

# Stages in which a Space that should run has nothing running (unless a deployment lives on).
_IDLE = frozenset(
    {
        Stage.NO_APP_FILE,
        Stage.CONFIG_ERROR,
        Stage.BUILD_ERROR,
        Stage.RUNTIME_ERROR,
        Stage.SLEEPING,
        Stage.PAUSED,
        Stage.STOPPED,
        Stage.DELETING,
    }
)
_LIVE = (DeploymentStatus.ACTIVE.value, DeploymentStatus.STARTING.value)
GIB = 1024**3  # flavors' memory ("16g") is binary
GB = 1000**3  # storage tiers are Hugging Face's decimal GB


class QuotaExceeded(Forbidden):
    """A change would take a namespace over one of its limits (403, says which and why)."""

    error_code = "QuotaExceeded"


@dataclass(frozen=True)
class Need:
    """What one Space holds (or would hold) while awake."""

    cpu: float = 0.0
    memory_gb: float = 0.0
    gpus: int = 0
    hardware: str = ""


@dataclass
class Usage:
    """A namespace's usage, each part with the Spaces behind it (for messages and pages)."""

    spaces: list[str] = field(default_factory=list)
    awake: dict[str, Need] = field(default_factory=dict)  # Space id -> its flavor's size
    gpus: dict[str, int] = field(default_factory=dict)  # Space id -> GPUs held or wanted
    storage_gb: dict[str, float] = field(default_factory=dict)  # /data tier + repo
    builds: dict[str, int] = field(default_factory=dict)  # builds started in the last hour

    def total(self, limit: str) -> float:
        if limit == "spaces":
            return len(self.spaces)
        if limit == "cpu":
            return sum(n.cpu for n in self.awake.values())
        if limit == "memory_gb":
            return sum(n.memory_gb for n in self.awake.values())
        if limit == "gpus":
            return sum(self.gpus.values())
        if limit == "storage_gb":
            return sum(self.storage_gb.values())
        return sum(self.builds.values())


def num(value: float | None) -> str:
    """2.0 -> "2", 0.5 -> "0.5", None -> "unlimited"."""
    if value is None:
        return "unlimited"
    return f"{value:.2f}".rstrip("0").rstrip(".")


# --- limits ------------------------------------------------------------------------------------


def get_quota(session: Session, namespace: str) -> Quota | None:
    return session.scalar(select(Quota).where(Quota.namespace == namespace))


def limits_of(session: Session, settings: Settings, namespace: str) -> dict[str, float | None]:
    """Every limit of the namespace (None: unlimited): its own quota, else the node's default
    (`SPACEPORT_DEFAULT_QUOTA`, unlimited unless set), which a site admin's own namespace is
    spared (the examples `make up` pushes live there)."""
    quota = get_quota(session, namespace)
    source: Any = quota if quota is not None else settings.default_quota
    if quota is None and session.scalar(select(User.is_admin).where(User.name == namespace)):
        source = QuotaConfig()
    return {k: getattr(source, k) for k in LIMITS}


def set_limits(
    session: Session, settings: Settings, namespace: str, values: dict[str, float | None]
) -> Quota:
    """Set the limits named in `values` (None: unlimited); the others keep their value (a
    namespace's first quota starts from the node's default)."""
    for key, value in values.items():
        if key not in LIMITS:
            raise SpaceportError(f"unknown quota limit {key!r}: one of {', '.join(LIMITS)}")
        if value is not None and value < 0:
            raise SpaceportError(f"quota {key} must be 0 or more (got {num(value)})")
    quota = get_quota(session, namespace)
    if quota is None:
        quota = Quota(namespace=namespace, **settings.default_quota.model_dump())
        session.add(quota)
    for key, value in values.items():
        setattr(quota, key, int(value) if value is not None and key in INTEGER_LIMITS else value)
    session.flush()
    return quota


# --- usage -------------------------------------------------------------------------------------


def flavor_of(settings: Settings, hardware: str | None) -> Flavor:
    try:
        return resolve_flavor(settings, hardware)
    except UnknownFlavor:  # a flavor the operator removed: count the default's size
        return resolve_flavor(settings, None)


def need_of(settings: Settings, hardware: str | None) -> Need:
    flavor = flavor_of(settings, hardware)
    return Need(flavor.cpus, flavor.memory_bytes / GIB, flavor.gpus, flavor.name)


def is_awake(space: Space, live: bool) -> bool:
    """The runtime keeps it running: `live` says a deployment of it is active or starting.

    A light-sleeping Space is frozen in its container (memory and GPU kept, thawed within
    milliseconds by the next request, with no check on the way): it counts as awake. A deep
    sleep stops the container; its wake is checked (`check_awake`)."""
    if space.desired != Desired.RUNNING:
        return False
    return live or Stage(space.stage) not in _IDLE


def _dir_bytes(path: Path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            with contextlib.suppress(OSError):  # gone meanwhile (a gc, a push)
                total += os.lstat(os.path.join(root, f)).st_size
    return total


def usage(session: Session, settings: Settings, namespace: str, *, storage: bool = True) -> Usage:
    """What the namespace's Spaces use now; `storage=False` skips measuring the repositories
    (a walk of each on disk), which only the storage limit and pages need."""
    found = list(session.scalars(select(Space).where(Space.owner == namespace).order_by(Space.id)))
    ids = [s.id for s in found]
    live = set(
        session.scalars(
            select(Deployment.space_id).where(
                Deployment.space_id.in_(ids), Deployment.status.in_(_LIVE)
            )
        )
    )
    held = {
        pk: n
        for pk, n in session.execute(
            select(GpuAllocation.space_id, func.count())
            .where(GpuAllocation.space_id.in_(ids))
            .group_by(GpuAllocation.space_id)
        )
    }
    since = utcnow() - timedelta(hours=1)
    builds = {
        pk: n
        for pk, n in session.execute(
            select(Build.space_id, func.count())
            .where(Build.space_id.in_(ids), Build.created_at >= since)
            .group_by(Build.space_id)
        )
    }
    out = Usage()
    for space in found:
        sid = space.space_id
        out.spaces.append(sid)
        need = need_of(settings, space.hardware_requested)
        awake = is_awake(space, space.id in live)
        if awake:
            out.awake[sid] = need
        gpus = max(need.gpus if awake else 0, held.get(space.id, 0))
        if gpus:
            out.gpus[sid] = gpus
        if storage:
            stored = _dir_bytes(repo_path(settings, space.owner, space.name))
            if space.storage in settings.data_sizes:
                stored += int(settings.data_sizes[space.storage])
            out.storage_gb[sid] = stored / GB
        if builds.get(space.id):
            out.builds[sid] = builds[space.id]
    return out


def report(session: Session, settings: Settings, namespace: str) -> dict[str, Any]:
    """Limits and usage of a namespace, as the API, CLI and console pages show them."""
    limits = limits_of(session, settings, namespace)
    used = usage(session, settings, namespace)
    return {
        "namespace": namespace,
        "limits": limits,
        "default": get_quota(session, namespace) is None,  # the node's default limits apply
        "usage": {k: round(used.total(k), 3) for k in LIMITS},
        "usedBy": {
            "spaces": used.spaces,
            "cpu": {k: n.cpu for k, n in used.awake.items()},
            "memory_gb": {k: round(n.memory_gb, 3) for k, n in used.awake.items()},
            "gpus": used.gpus,
            "storage_gb": {k: round(v, 3) for k, v in used.storage_gb.items()},
            "builds_per_hour": used.builds,
        },
    }


def rename_namespace(session: Session, old: str, new: str) -> None:
    """An organization renamed: its quota goes with it (a new name is no way around one)."""
    quota = get_quota(session, old)
    if quota is not None:
        quota.namespace = new
        session.flush()


def forget(session: Session, namespace: str) -> None:
    """A user or organization deleted: its quota goes (a later one of that name starts free)."""
    quota = get_quota(session, namespace)
    if quota is not None:
        session.delete(quota)
        session.flush()


def namespaces(session: Session) -> list[str]:
    """Every namespace: users, organizations, and owners of Spaces (or quotas) besides."""
    found = set(session.scalars(select(User.name)))
    found |= set(session.scalars(select(Organization.name)))
    found |= set(session.scalars(select(Space.owner).distinct()))
    found |= set(session.scalars(select(Quota.namespace)))
    return sorted(found)


def namespace_exists(session: Session, namespace: str) -> bool:
    return any(
        session.scalar(select(model).where(column == namespace).limit(1)) is not None
        for model, column in (
            (User.id, User.name),
            (Organization.id, Organization.name),
            (Space.id, Space.owner),
        )
    )


# --- checks ------------------------------------------------------------------------------------

_WHAT = {
    "cpu": ("CPUs", "in awake Spaces"),
    "memory_gb": ("GB of memory", "in awake Spaces"),
    "gpus": ("GPUs", ""),
    "storage_gb": ("GB of storage", "(/data and repositories)"),
}


def _ask(namespace: str, limit: str) -> str:
    return f"ask an admin to raise the limit (spaceport quota set {namespace} {OPTIONS[limit]} N)"


def _refuse(namespace: str, text: str) -> QuotaExceeded:
    return QuotaExceeded(f"Quota exceeded for {namespace}: {text}")


def _listing(parts: dict[str, Any], unit: str = "") -> str:
    if not parts:
        return "none"
    return ", ".join(f"{sid}: {num(v)}{unit}" for sid, v in parts.items())


def check_new_space(session: Session, settings: Settings, namespace: str) -> None:
    """One more Space in `namespace` (create, duplicate, move into it)."""
    limit = limits_of(session, settings, namespace)["spaces"]
    if limit is None:
        return
    found = list(session.scalars(select(Space).where(Space.owner == namespace).order_by(Space.id)))
    if len(found) + 1 <= limit:
        return
    names = ", ".join(s.space_id for s in found) or "none"
    raise _refuse(
        namespace,
        f"at most {num(limit)} Spaces, it has {len(found)} ({names}). Delete one or "
        + _ask(namespace, "spaces")
        + ".",
    )


def check_awake(
    session: Session, settings: Settings, space: Space, hardware: str | None = None
) -> None:
    """`space` is (or stays) awake on `hardware` (default: its own): CPU, memory and GPUs of
    the namespace's awake Spaces, this one counted at its new size, must stay in the limits.
    A change that does not add to a total (same or smaller hardware) always passes."""
    need = need_of(settings, hardware or space.hardware_requested)
    _check_compute(session, settings, space.owner, space.space_id, need, replacing=space.space_id)


def _check_compute(
    session: Session,
    settings: Settings,
    namespace: str,
    sid: str,
    need: Need,
    *,
    replacing: str | None = None,
) -> None:
    """`sid` awake with `need` in `namespace`, in place of what `replacing` holds now."""
    limits = limits_of(session, settings, namespace)
    if all(limits[k] is None for k in ("cpu", "memory_gb", "gpus")):
        return
    used = usage(session, settings, namespace, storage=False)
    held = used.awake.get(replacing or "", Need())
    held_gpus = float(used.gpus.get(replacing or "", 0))
    before = {"cpu": held.cpu, "memory_gb": held.memory_gb, "gpus": held_gpus}
    after = {"cpu": need.cpu, "memory_gb": need.memory_gb, "gpus": float(need.gpus)}
    parts = {
        "cpu": {k: n.cpu for k, n in used.awake.items() if k != replacing},
        "memory_gb": {k: n.memory_gb for k, n in used.awake.items() if k != replacing},
        "gpus": {k: float(v) for k, v in used.gpus.items() if k != replacing},
    }
    for key in ("cpu", "memory_gb", "gpus"):
        limit = limits[key]
        if limit is None or after[key] <= before[key]:
            continue
        others = sum(parts[key].values())
        if others + after[key] <= limit:
            continue
        unit, where = _WHAT[key]
        raise _refuse(
            namespace,
            f"at most {num(limit)} {unit}{' ' + where if where else ''}; {sid} on "
            f"{need.hardware} needs {num(after[key])} and the others use {num(others)} "
            f"({_listing(parts[key])}). Pause or delete another Space, choose smaller "
            "hardware, or " + _ask(namespace, key) + ".",
        )


def check_storage(session: Session, settings: Settings, space: Space, tier: str | None) -> None:
    """`space` gets the /data tier `tier` (None: none): the namespace's storage must fit."""
    limit = limits_of(session, settings, space.owner)["storage_gb"]
    if limit is None or tier is None or tier not in settings.data_sizes:
        return
    used = usage(session, settings, space.owner)
    sid = space.space_id
    current = int(settings.data_sizes[space.storage]) if space.storage in settings.data_sizes else 0
    wanted = int(settings.data_sizes[tier])
    if wanted <= current:
        return
    total = used.total("storage_gb") + (wanted - current) / GB
    if total <= limit:
        return
    raise _refuse(
        space.owner,
        f"at most {num(limit)} GB of storage (/data and repositories), it uses "
        f"{num(used.total('storage_gb'))} ({_listing(used.storage_gb, ' GB')}) and {tier} "
        f"storage for {sid} adds {num((wanted - current) / GB)} GB. Delete another Space's "
        "storage or " + _ask(space.owner, "storage_gb") + ".",
    )


def _check_builds(session: Session, settings: Settings, namespace: str) -> None:
    limit = limits_of(session, settings, namespace)["builds_per_hour"]
    if limit is None:
        return
    used = usage(session, settings, namespace, storage=False)
    started = used.total("builds_per_hour")
    if started + 1 <= limit:
        return
    raise _refuse(
        namespace,
        f"at most {num(limit)} builds per hour, it started {num(started)} in the last hour "
        f"({_listing(used.builds)}). Wait a while (builds older than an hour stop counting) "
        "or " + _ask(namespace, "builds_per_hour") + ".",
    )


def check_build(session: Session, settings: Settings, space: Space) -> None:
    """A build of `space` starts: one more build this hour, and the Space becomes awake."""
    _check_builds(session, settings, space.owner)
    check_awake(session, settings, space)


def check_copy(
    session: Session, settings: Settings, namespace: str, name: str, hardware: str | None
) -> None:
    """A new Space `namespace/name` that builds at once (a duplicate): a Space, a build, and
    an awake Space on `hardware`."""
    check_new_space(session, settings, namespace)
    _check_builds(session, settings, namespace)
    _check_compute(session, settings, namespace, f"{namespace}/{name}", need_of(settings, hardware))


def check_move(
    session: Session, settings: Settings, space: Space, namespace: str, name: str
) -> None:
    """`space` becomes `namespace/name`, then rebuilds (when it has a commit): into another
    namespace it is one more Space there, awake there once its build runs."""
    if namespace != space.owner:
        check_new_space(session, settings, namespace)
    if not space.head_sha:
        return
    _check_builds(session, settings, namespace)
    replacing = space.space_id if namespace == space.owner else None
    need = need_of(settings, space.hardware_requested)
    _check_compute(session, settings, namespace, f"{namespace}/{name}", need, replacing=replacing)


def build_refusal(session: Session, settings: Settings, space: Space) -> str | None:
    """`check_build`'s message, or None: what a git push is told before it lands."""
    try:
        check_build(session, settings, space)
    except QuotaExceeded as exc:
        return str(exc)
    return None


# --- for pages ---------------------------------------------------------------------------------

ROWS = (
    ("spaces", "Spaces", ""),
    ("cpu", "CPUs of awake Spaces", ""),
    ("memory_gb", "Memory of awake Spaces", " GB"),
    ("gpus", "GPUs", ""),
    ("storage_gb", "Storage (/data and repositories)", " GB"),
    ("builds_per_hour", "Builds in the last hour", ""),
)


def shown(value: float | None, unit: str = "") -> str:
    """A number as a page shows it: "2", "0.5 GB", "<0.01 GB", "unlimited"."""
    if value is None:
        return "unlimited"
    if 0 < value < 0.01:
        return f"<0.01{unit}"
    return num(value) + unit


def view(session: Session, settings: Settings, namespace: str) -> dict[str, Any]:
    """A namespace's quota for a console page (the account page, an organization's page, the
    admin page): one row per limit with its usage, whether it is reached, and what uses it."""
    data = report(session, settings, namespace)
    rows = []
    for key, label, unit in ROWS:
        used, limit, by = data["usage"][key], data["limits"][key], data["usedBy"][key]
        parts = by if isinstance(by, list) else [f"{k} ({shown(v, unit)})" for k, v in by.items()]
        rows.append(
            {
                "key": key,
                "label": label,
                "used": shown(used, unit),
                "limit": shown(limit, unit if limit is not None else ""),
                "full": limit is not None and used >= limit,
                "usedBy": parts,
            }
        )
    return {"namespace": namespace, "limits": data["limits"], "rows": rows}
