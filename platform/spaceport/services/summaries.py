"""What a person sees of a Space: one summary shape for console pages, their live JS and the CLI.

Hugging Face's `space_info`/`runtime` answers lack what an owner needs at a glance (the
container that serves, the last build, colors to draw a card), so the native
`/api/v1/spaces` routes answer this richer summary, computed here once for everyone.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import redis
from sqlalchemy import func, select
from sqlalchemy.orm import Session, defer

from spaceport import logstream, telemetry
from spaceport.auth.principal import Principal
from spaceport.db.models import Build, Deployment, Space, SpaceVariable
from spaceport.services import access
from spaceport.settings import Settings
from spaceport.stages import LABELS, BuildStatus, DeploymentStatus, Stage, console_message
from spaceport.stages import label as stage_label
from spaceport.timefmt import iso_seconds

# The badge color of each stage, by group; the console's CSS has one class per group.
STAGE_GROUPS: dict[str, str] = {
    Stage.RUNNING: "ok",
    Stage.BUILDING: "busy",
    Stage.APP_STARTING: "busy",
    Stage.RUNNING_BUILDING: "busy",
    Stage.RUNNING_APP_STARTING: "busy",
    Stage.BUILD_ERROR: "error",
    Stage.CONFIG_ERROR: "error",
    Stage.RUNTIME_ERROR: "error",
    Stage.SLEEPING: "idle",
    Stage.PAUSED: "idle",
    Stage.STOPPED: "idle",
    Stage.NO_APP_FILE: "idle",
    Stage.DELETING: "error",
}
# Hugging Face's front matter colors, as the gradient stops of a card.
COLORS: dict[str, str] = {
    "red": "#ef4444",
    "yellow": "#eab308",
    "green": "#22c55e",
    "blue": "#3b82f6",
    "indigo": "#6366f1",
    "purple": "#a855f7",
    "pink": "#ec4899",
    "gray": "#6b7280",
}
STAGE_LABELS = LABELS  # one mapping for every place a stage is shown (stages.py)


def initial(title: str) -> str:
    """The letter a Space's avatar shows when it has no emoji, or no font can draw it."""
    return next((c.upper() for c in title if c.isalnum()), "S")


def color(name: object, fallback: str) -> str:
    return COLORS.get(str(name or "").lower(), COLORS[fallback])


def latest_builds(session: Session, ids: list[int]) -> dict[int, Build]:
    """Each Space's newest build, without its log and cache report (what a summary shows):
    a list of 1,000 Spaces read 1,000 build logs otherwise (docs/benchmarks.md)."""
    if not ids:
        return {}
    newest = (
        select(func.max(Build.id)).where(Build.space_id.in_(ids)).group_by(Build.space_id)
    ).scalar_subquery()
    query = (
        select(Build)
        .where(Build.id.in_(newest))
        .options(defer(Build.log), defer(Build.cache_report))
    )
    return {b.space_id: b for b in session.scalars(query)}


def active_deployments(session: Session, ids: list[int]) -> dict[int, Deployment]:
    if not ids:
        return {}
    rows = session.scalars(
        select(Deployment)
        .where(Deployment.space_id.in_(ids), Deployment.status == DeploymentStatus.ACTIVE)
        .order_by(Deployment.id)
    )
    return {d.space_id: d for d in rows}  # later deployments win


def summary(
    settings: Settings,
    space: Space,
    build: Build | None,
    deployment: Deployment | None,
) -> dict[str, Any]:
    """Everything the console and CLI show of one Space, JSON-ready."""
    card = space.card_data or {}
    stage = space.stage
    base = settings.url.rstrip("/")
    out: dict[str, Any] = {
        "id": space.space_id,
        "owner": space.owner,
        "name": space.name,
        "title": str(card.get("title") or space.name),
        "emoji": str(card.get("emoji") or ""),  # user content; pages fall back to `initial`
        "initial": initial(str(card.get("title") or space.name)),
        "colorFrom": color(card.get("colorFrom"), "indigo"),
        "colorTo": color(card.get("colorTo"), "purple"),
        "shortDescription": card.get("short_description") or "",
        "sdk": space.sdk or card.get("sdk"),
        "private": space.private,
        "stage": stage,
        "stageGroup": STAGE_GROUPS.get(stage, "idle"),
        "stageLabel": stage_label(stage),
        "message": console_message(stage),
        "errorMessage": space.error_message,
        "sha": space.head_sha,
        "desired": space.desired,
        "hardware": {
            "requested": space.hardware_requested,
            "current": space.hardware_current if deployment else None,
        },
        "sleepTime": space.sleep_time,
        "storage": space.storage,
        "container": None,
        "lastBuild": None,
        "appUrl": settings.app_url(space.owner, space.name),
        "pageUrl": f"{base}/spaces/{space.space_id}",
        "gitRemote": f"{base}/spaces/{space.space_id}",
        "createdAt": iso_seconds(space.created_at),
        "updatedAt": iso_seconds(space.updated_at),
    }
    if deployment is not None and deployment.container_id:
        out["container"] = {
            "id": deployment.container_id[:12],
            "deployment": deployment.id,
            "sha": deployment.commit_sha,
            "since": iso_seconds(deployment.ready_at or deployment.created_at),
            "node": deployment.node,  # cluster mode: the machine it runs on
        }
    if build is not None:
        out["lastBuild"] = {
            "id": build.id,
            "status": build.status,
            "sha": build.commit_sha,
            "createdAt": iso_seconds(build.created_at),
            "finishedAt": iso_seconds(build.finished_at),
            "error": build.error_message,
        }
    return out


def visible_spaces(session: Session, who: Principal | None) -> list[Space]:
    """Admins see every Space; a user their own, their organizations' and public ones; a visitor
    public ones."""
    query = select(Space).order_by(Space.updated_at.desc(), Space.id.desc())
    if who is None:
        query = query.where(Space.private.is_(False))
    elif not who.is_admin:
        query = query.where((Space.private.is_(False)) | (Space.owner.in_(who.namespaces)))
    return [s for s in session.scalars(query) if access.can_read(s, who)]


@dataclass
class Listing:
    """One page of the Spaces a caller may see, and what a list page says about all of them."""

    items: list[dict[str, Any]]  # the page's summaries
    total: int  # Spaces the filters keep
    visible: int  # Spaces the caller may see
    counts: dict[str, int]  # visible Spaces per stage group (ok, busy, error, idle)
    owners: list[str]  # owners of the visible Spaces


def listing(
    session: Session,
    settings: Settings,
    who: Principal | None,
    *,
    search: str = "",
    stage: str = "",
    owner: str = "",
    limit: int | None = None,
    offset: int = 0,
) -> Listing:
    """The filtered Spaces from `offset`, at most `limit` of them, summarized: only the page's
    are (a summary is the costly part: its builds, deployments and URLs; 1,000 of them took
    0.3-0.7 s here, a page of 100 a tenth of that)."""
    everything = visible_spaces(session, who)
    counts: dict[str, int] = {}
    for s in everything:
        group = STAGE_GROUPS.get(s.stage, "idle")
        counts[group] = counts.get(group, 0) + 1
    kept = [s for s in everything if matches(s, search, stage, owner)]
    page = kept[offset : None if limit is None else offset + limit]
    ids = [s.id for s in page]
    builds, deps = latest_builds(session, ids), active_deployments(session, ids)
    return Listing(
        items=[summary(settings, s, builds.get(s.id), deps.get(s.id)) for s in page],
        total=len(kept),
        visible=len(everything),
        counts=counts,
        owners=sorted({s.owner for s in everything}),
    )


def matches(space: Space, search: str = "", stage: str = "", owner: str = "") -> bool:
    """The console's and the CLI's filters: part of the id or title, stages or groups (ok,
    busy, error, idle; comma-separated), one owner."""
    needle = search.strip().lower()
    if needle and not (
        needle in space.space_id.lower()
        or needle in str((space.card_data or {}).get("title") or "").lower()
    ):
        return False
    if owner and space.owner != owner:
        return False
    if stage:
        wanted = {x.strip().upper() for x in stage.split(",") if x.strip()}
        groups = {x.lower() for x in wanted}
        return space.stage in wanted or STAGE_GROUPS.get(space.stage) in groups
    return True


def space_summary(session: Session, settings: Settings, space: Space) -> dict[str, Any]:
    builds, deps = latest_builds(session, [space.id]), active_deployments(session, [space.id])
    out = summary(settings, space, builds.get(space.id), deps.get(space.id))
    build = builds.get(space.id)
    if build is not None and build.status == BuildStatus.RUNNING:
        # what the build does now: `--wait` shows it (the console follows the whole log)
        with contextlib.suppress(redis.RedisError):
            client = telemetry.redis_client(settings)
            out["lastBuild"]["lastLine"] = logstream.last_line(
                client, logstream.build_key(build.id)
            )
    return out


def env_summary(session: Session, space_pk: int) -> dict[str, Any]:
    """The Space's variables (with values) and secrets (names and dates only), by key."""
    rows = session.scalars(
        select(SpaceVariable).where(SpaceVariable.space_id == space_pk).order_by(SpaceVariable.key)
    ).all()
    return {
        "variables": [
            {"key": v.key, "value": v.value or "", "description": v.description or ""}
            for v in rows
            if not v.is_secret
        ],
        "secrets": [
            {
                "key": v.key,
                "description": v.description or "",
                "updatedAt": iso_seconds(v.updated_at),
            }
            for v in rows
            if v.is_secret
        ],
    }
