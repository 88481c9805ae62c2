"""The warm task: after a deploy, build the compiled dependency stage of that build.

Warming only uses a worker that has nothing else to do: it is its own Celery task (it never
holds a Space's build lease), one runs at a time on a node, it waits while any build is queued
or running or any app is starting, and stops when one begins (the next idle moment starts it
again). A newer build of the same Space makes it give up for good: that build warms its own
dependency set. See compiled_deps.py for why and what is built.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
from pathlib import Path

import redis
import structlog
from redis.exceptions import LockError
from sqlalchemy import select

from spaceport import queue
from spaceport.db.models import Build, Space
from spaceport.db.session import session_scope
from spaceport.front_matter import load_config
from spaceport.git.repos import export_tree
from spaceport.settings import Settings
from spaceport.stages import BuildStatus, Stage
from spaceport_builder import compiled_deps
from spaceport_builder.build_job import Claimed, builds_dir, describe, prepare, superseded
from spaceport_builder.image_build import BuildCancelled, BuildFailed
from spaceport_builder.repo_fetch import repository_for

log = structlog.get_logger(__name__)

WARM_LOCK = "spaceport:warm-deps"
RETRY_S = 5
MAX_TRIES = 60  # about five minutes of a busy node, then the next build of the Space retries


BUSY_STAGES = (
    Stage.BUILDING,
    Stage.RUNNING_BUILDING,
    Stage.APP_STARTING,
    Stage.RUNNING_APP_STARTING,
)


def node_busy() -> bool:
    """A build is queued or running, or an app is starting: warming would slow it down."""
    with session_scope() as session:
        build = session.scalar(
            select(Build.id).where(Build.status.in_([BuildStatus.QUEUED, BuildStatus.RUNNING]))
        )
        starting = session.scalar(select(Space.id).where(Space.stage.in_(BUSY_STAGES)))
        return build is not None or starting is not None


def warm_deps(settings: Settings, build_id: int, tries: int = 0) -> bool:
    """Build and tag the compiled stage of `build_id`'s dependencies; True when it did."""
    job = describe(build_id)
    if job is None or superseded(build_id):
        return False
    client = redis.Redis.from_url(settings.redis_url)
    lock = client.lock(WARM_LOCK, timeout=settings.build_timeout_s)
    if node_busy() or not lock.acquire(blocking=False):
        if tries < MAX_TRIES:  # busy: try again in a moment
            queue.send_warm(build_id, tries + 1, countdown=RETRY_S)
        return False
    try:
        return _warm(settings, build_id, job, tries)
    finally:
        with contextlib.suppress(LockError):
            lock.release()


def _warm(settings: Settings, build_id: int, job: Claimed, tries: int) -> bool:
    workdir = Path(tempfile.mkdtemp(prefix=f"warm-{build_id}-", dir=builds_dir(settings)))
    started = time.monotonic()
    try:
        repo_dir = workdir / "repo"
        repo = repository_for(settings, job.owner, job.name, job.sha, lambda _line: None)
        export_tree(repo, job.sha, repo_dir)
        config = load_config(repo_dir, default_sdk=job.sdk)
        pack, req, base = prepare(settings, job, config, repo_dir, workdir, lambda _line: None)
        if not pack.has_compiled_stage():
            return False
        stages = compiled_deps.choose(
            settings, pack, req, base, compiled=True, sdk_stage=_sdk_stage(build_id)
        )
        sdk_ready = not stages.sdk_fp or compiled_deps.is_ready(settings, stages.sdk_fp, sdk=True)
        if sdk_ready and compiled_deps.is_ready(settings, stages.deps_fp):
            compiled_deps.touch(settings, stages)  # in use again: not the next to be pruned
            _record_warmed(settings, build_id, stages)  # by another Space's warm task
            return False
        compiled_deps.warm(
            settings, req, stages, lambda _line: None, lambda: node_busy() or superseded(build_id)
        )
        _record_warmed(settings, build_id, stages)
        log.info(
            "build.warmed", build=build_id, **stages.report(), seconds=time.monotonic() - started
        )
        return True
    except BuildCancelled:
        if not superseded(build_id) and tries < MAX_TRIES:  # a build came in: warm when idle
            queue.send_warm(build_id, tries + 1, countdown=RETRY_S)
        return False
    except BuildFailed as exc:
        log.info("build.warm_failed", build=build_id, reason=str(exc))
        return False
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _sdk_stage(build_id: int) -> str | None:
    """The SDK stage the build started its dependencies from (its dependency set is compiled
    on that one: compiled_deps.choose)."""
    with session_scope() as session:
        build = session.get(Build, build_id)
        report = (build.cache_report if build is not None else None) or {}
    stage = report.get("sdk_stage")
    return stage if isinstance(stage, str) else None


def _record_warmed(settings: Settings, build_id: int, stages: compiled_deps.Stages) -> None:
    """The build's cache report names the compiled stages made for it (what later builds of
    the same dependency set start from); the Space's standby can start from them now."""
    with session_scope() as session:
        build = session.get(Build, build_id)
        if build is not None:
            build.cache_report = {
                **(build.cache_report or {}),
                "warmed": {"deps": stages.deps_fp, "sdk": stages.sdk_fp},
            }
    queue.send_standby(build_id)
