"""One build, start to finish: export the commit, read its config, render, build, deploy.

Every outcome lands in the database with a stage and a message the owner can act on; a failed
build never touches the version that is serving.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import redis
import structlog

from spaceport.db.models import Build, Space, utcnow
from spaceport.db.session import session_scope
from spaceport.git.repos import export_tree, repo_path
from spaceport.logstream import LogWriter, build_key
from spaceport.services.spaces import active_deployment
from spaceport.settings import Settings
from spaceport.stages import BuildStatus, Stage, building_stage, starting_stage
from spaceport_builder.base_images import BaseImageError, ensure_base_image
from spaceport_builder.front_matter import ConfigError, NoAppFile, load_config
from spaceport_builder.image_build import BuildCancelled, BuildFailed, run_build
from spaceport_builder.packs import BuildContext, pack_for

log = structlog.get_logger(__name__)


@dataclass
class Claimed:
    build_id: int
    space_pk: int
    owner: str
    name: str
    sdk: str | None
    sha: str
    no_cache: bool
    serving: bool


def image_tag(space_pk: int, owner: str, name: str, sha: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", f"{owner}-{name}".lower()).strip("-")
    return f"spaceport/space-{space_pk}-{slug}:{sha[:12]}"


def claim(build_id: int) -> Claimed | None:
    with session_scope() as session:
        build = session.get(Build, build_id)
        if build is None or build.status not in (BuildStatus.QUEUED, BuildStatus.RUNNING):
            return None
        space = build.space
        serving = active_deployment(session, space) is not None
        build.status, build.started_at = BuildStatus.RUNNING.value, utcnow()
        space.stage = building_stage(serving).value
        return Claimed(
            build_id,
            space.id,
            space.owner,
            space.name,
            space.sdk,
            build.commit_sha,
            build.no_cache,
            serving,
        )


def is_cancelled(build_id: int) -> bool:
    with session_scope() as session:
        build = session.get(Build, build_id)
        return build is None or build.status == BuildStatus.CANCELLED


def finish(
    job: Claimed,
    status: BuildStatus,
    writer: LogWriter,
    *,
    stage: Stage | None = None,
    message: str | None = None,
    image: str | None = None,
    cache: dict[str, object] | None = None,
) -> None:
    with session_scope() as session:
        build = session.get(Build, job.build_id)
        space = session.get(Space, job.space_pk)
        if build is None or space is None:
            return
        if build.status == BuildStatus.CANCELLED:
            status = BuildStatus.CANCELLED
        build.status, build.finished_at = status.value, utcnow()
        build.log, build.error_message, build.image = writer.text(), message, image
        build.cache_report = cache or {}
        if stage is not None and status != BuildStatus.CANCELLED:
            serving = active_deployment(session, space) is not None
            # A failed build leaves the serving version up: report it, keep RUNNING.
            if stage == Stage.APP_STARTING:
                space.stage = starting_stage(serving).value
            else:
                space.stage = (Stage.RUNNING if serving else stage).value
            space.error_message = message
    writer.close(status.value)


def _failure_message(exc: BuildFailed, writer: LogWriter) -> str:
    tail = "\n".join(line.split(" ", 1)[-1] for line in writer.kept[-15:])
    return f"Build failed: {exc}\n--- last log lines ---\n{tail}"


def run_build_job(settings: Settings, build_id: int) -> bool:
    """Returns True when an image was built and should be deployed."""
    job = claim(build_id)
    if job is None:
        return False
    writer = LogWriter(
        redis.Redis.from_url(settings.redis_url), build_key(build_id), settings.build_log_max_bytes
    )
    writer.write(f"Building {job.owner}/{job.name} at {job.sha[:12]}")
    workdir = Path(tempfile.mkdtemp(prefix="spaceport-build-"))
    try:
        repo_dir = workdir / "repo"
        export_tree(repo_path(settings, job.owner, job.name), job.sha, repo_dir)
        config = load_config(repo_dir, default_sdk=job.sdk)
        _record_config(job, config.raw, config.sdk)
        gpu = False
        base = ensure_base_image(settings, config.python_version, gpu, log=writer.write)
        pack = pack_for(BuildContext(repo_dir=repo_dir, config=config, base_image=base))
        dockerfile = (
            repo_dir / "Dockerfile" if pack.uses_repo_dockerfile() else workdir / "Dockerfile"
        )
        if not pack.uses_repo_dockerfile():
            dockerfile.write_text(pack.render())
            writer.write("--- Dockerfile ---")
            for line in pack.render().splitlines():
                writer.write(line)
            writer.write("------------------")
        tag = image_tag(job.space_pk, job.owner, job.name, job.sha)
        report = run_build(
            settings,
            repo_dir,
            dockerfile,
            tag,
            writer.write,
            no_cache=job.no_cache,
            cancelled=lambda: is_cancelled(build_id),
        )
        writer.write(f"Built {tag} ({report.as_dict()['cached_count']} steps from cache)")
        finish(
            job,
            BuildStatus.SUCCEEDED,
            writer,
            stage=Stage.APP_STARTING,
            image=tag,
            cache=report.as_dict(),
        )
        return True
    except NoAppFile as exc:
        writer.write(f"ERROR: {exc}")
        finish(job, BuildStatus.FAILED, writer, stage=Stage.NO_APP_FILE, message=str(exc))
    except ConfigError as exc:
        writer.write(f"ERROR: {exc}")
        finish(job, BuildStatus.FAILED, writer, stage=Stage.CONFIG_ERROR, message=str(exc))
    except BuildCancelled as exc:
        writer.write(str(exc))
        finish(job, BuildStatus.CANCELLED, writer, message=str(exc))
    except (BuildFailed, BaseImageError) as exc:
        writer.write(f"ERROR: {exc}")
        message = _failure_message(exc, writer) if isinstance(exc, BuildFailed) else str(exc)
        finish(job, BuildStatus.FAILED, writer, stage=Stage.BUILD_ERROR, message=message)
    except Exception as exc:  # an unexpected bug must not leave the build stuck
        log.exception("build.crashed", build=build_id)
        writer.write(f"ERROR: internal error: {exc}")
        finish(
            job,
            BuildStatus.FAILED,
            writer,
            stage=Stage.BUILD_ERROR,
            message=f"internal build error: {exc}",
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return False


def _record_config(job: Claimed, raw: dict[str, object], sdk: str) -> None:
    with session_scope() as session:
        space = session.get(Space, job.space_pk)
        if space is not None:
            space.card_data, space.sdk = raw, sdk
