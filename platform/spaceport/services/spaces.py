"""Spaces: create, look up, and react to new commits (start a build)."""

from __future__ import annotations

import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session

from spaceport import queue
from spaceport.auth.principal import Principal
from spaceport.db import queries
from spaceport.db.models import Build, Deployment, Space, utcnow
from spaceport.errors import Conflict
from spaceport.front_matter import SDKS
from spaceport.git import browse
from spaceport.git.repos import MAIN, head_sha, init_repo, repo_path
from spaceport.names import check_name
from spaceport.services import access, audit
from spaceport.settings import Settings, get_settings
from spaceport.stages import SERVING, BuildStatus, Stage, building_stage

log = structlog.get_logger(__name__)


def find_space(session: Session, owner: str, name: str) -> Space | None:
    return session.scalar(select(Space).where(Space.owner == owner, Space.name == name))


def readable_spaces(
    session: Session, who: Principal | None, *, owner: str | None = None
) -> list[Space]:
    """The Spaces `who` may see (None: a visitor), all owners' or `owner`'s only."""
    query = select(Space)
    if owner:
        query = query.where(Space.owner == owner)
    return [s for s in session.scalars(query) if access.can_read(s, who)]


def create_space(
    session: Session,
    settings: Settings,
    owner: str,
    name: str,
    *,
    sdk: str | None = None,
    private: bool = False,
    hardware: str | None = None,
    sleep_time: int | None = None,
    created_by: str | None = None,
) -> Space:
    check_name(owner, "owner")
    check_name(name, "Space name")
    if sdk is not None and sdk not in SDKS:
        raise ValueError(f"sdk must be one of {', '.join(SDKS)} (got {sdk!r})")
    if find_space(session, owner, name) is not None:
        raise Conflict(f"You already created this space repo: {owner}/{name}")
    space = Space(
        owner=owner,
        name=name,
        sdk=sdk,
        private=private,
        hardware_requested=hardware or settings.default_hardware,
        sleep_time=sleep_time,
        stage=Stage.NO_APP_FILE.value,
        card_data={},
        created_by=created_by,
    )
    session.add(space)
    session.flush()
    init_repo(settings, owner, name, settings.git_max_push_bytes)
    return space


def active_deployment(session: Session, space: Space) -> Deployment | None:
    return queries.active_deployment(session, space.id)


def is_serving(session: Session, space: Space) -> bool:
    return Stage(space.stage) in SERVING or active_deployment(session, space) is not None


def on_new_commit(
    session: Session,
    space_pk: int,
    before: str | None,
    pusher: audit.Actor | None,
    *,
    audited: str | None = "space.push",
) -> None:
    """`main` may have moved: record the new head and build it. The move is recorded in the
    audit log as `audited` (None: the caller records the change in its own words)."""
    space = session.get(Space, space_pk)
    if space is None:
        return
    sha = head_sha(repo_path(get_settings(), space.owner, space.name))
    if sha is None or sha == before:
        return
    log.info("push", space=space.space_id, sha=sha, pusher=pusher.name if pusher else None)
    if audited is not None:
        audit.record(
            session, pusher, audited, space=space.space_id, ref="main", before=before, after=sha
        )
    space.head_sha = sha
    enqueue_build(session, space, sha)


def record_other_refs(
    session: Session, space_pk: int, before: dict[str, str], pusher: audit.Actor | None
) -> None:
    """Record a push's changes to branches and tags other than `main` (`on_new_commit`
    records main's): one `space.push` each, `after` None where it deleted the ref."""
    space = session.get(Space, space_pk)
    if space is None:
        return
    after = dict(browse.refs(repo_path(get_settings(), space.owner, space.name)))
    for ref in sorted(set(before) | set(after)):
        if ref == MAIN or before.get(ref) == after.get(ref):
            continue
        short = ref.removeprefix("refs/heads/")
        audit.record(
            session,
            pusher,
            "space.push",
            space=space.space_id,
            ref=short,
            before=before.get(ref),
            after=after.get(ref),
        )


def enqueue_build(session: Session, space: Space, sha: str, *, no_cache: bool = False) -> Build:
    """Queue a build of `sha`; any older queued or running build of the Space is cancelled.

    Cancelling is a row update: a running build's watchdog sees it within a fraction of a
    second and stops `docker build`, and the new build waits for the Space's build lease
    (queue/lease.py), so one Space never has two builds running.
    """
    for old in session.scalars(
        select(Build).where(
            Build.space_id == space.id,
            Build.status.in_([BuildStatus.QUEUED, BuildStatus.RUNNING]),
        )
    ):
        if old.status == BuildStatus.QUEUED:
            old.finished_at = utcnow()  # never started; a running one records its own end
        old.status = BuildStatus.CANCELLED.value
        old.error_message = f"superseded by a newer commit ({sha[:12]})"
    build = Build(space=space, commit_sha=sha, no_cache=no_cache)
    session.add(build)
    space.stage = building_stage(is_serving(session, space)).value
    space.error_message = None
    if space.desired != "running":
        space.desired = "running"
    session.flush()
    session.commit()  # the worker must see the row before it picks the task up
    build.task_id = queue.try_send_build(build.id)  # None: Redis is down, sent when back
    return build
