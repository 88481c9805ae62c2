"""The warm task: after a deploy, build the compiled dependency stage of that build.

Its own Celery task, queued behind any build already waiting, so warming never delays a build
or holds the Space's build lease; a newer build of the Space makes it give up (that build
warms its own dependency set). See compiled_deps.py for why and what is built.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import structlog

from spaceport.git.repos import export_tree, repo_path
from spaceport.settings import Settings
from spaceport_builder import compiled_deps
from spaceport_builder.build_job import builds_dir, describe, prepare, superseded
from spaceport_builder.front_matter import load_config
from spaceport_builder.image_build import BuildCancelled, BuildFailed
from spaceport_builder.packs.base import DEPS_ARG

log = structlog.get_logger(__name__)

WARM_TASK = "spaceport.warm_deps"


def send_warm(build_id: int) -> None:
    from spaceport.queue import celery_app

    celery_app().send_task(WARM_TASK, args=[build_id])


def warm_deps(settings: Settings, build_id: int) -> bool:
    """Build and tag the compiled stage of `build_id`'s dependencies; True when it did."""
    job = describe(build_id)
    if job is None or superseded(build_id):
        return False
    workdir = Path(tempfile.mkdtemp(prefix=f"warm-{build_id}-", dir=builds_dir(settings)))
    started = time.monotonic()
    try:
        repo_dir = workdir / "repo"
        export_tree(repo_path(settings, job.owner, job.name), job.sha, repo_dir)
        config = load_config(repo_dir, default_sdk=job.sdk)
        pack, req, base = prepare(settings, job, config, repo_dir, workdir, lambda _line: None)
        if not pack.has_compiled_stage():
            return False
        req.build_args.pop(DEPS_ARG, None)
        fp = compiled_deps.fingerprint(settings, req, req.dockerfile.read_text(), base)
        if compiled_deps.is_ready(settings, fp):
            return False
        compiled_deps.warm(settings, req, fp, lambda _line: None, lambda: superseded(build_id))
        log.info("build.warmed", build=build_id, fp=fp, seconds=time.monotonic() - started)
        return True
    except (BuildFailed, BuildCancelled) as exc:
        log.info("build.warm_skipped", build=build_id, reason=str(exc))
        return False
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
