"""One build, start to finish: take the Space's lease, export the commit, read its config,
render, build, deploy, then warm the compiled dependency stage.

Every outcome lands in the database with a stage and a message the owner can act on; a failed
build never touches the version that is serving.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import redis
import structlog
from sqlalchemy import select

from spaceport import queue, telemetry
from spaceport.db.models import Build, Deployment, Space, utcnow
from spaceport.db.queries import active_deployment
from spaceport.db.session import session_scope
from spaceport.engine.base import LABEL_COMMIT, LABEL_INSTANCE, LABEL_SPACE, LABEL_SPACE_PK
from spaceport.flavors import UnknownFlavor, get_flavor
from spaceport.front_matter import ConfigError, NoAppFile, SpaceConfig, load_config
from spaceport.git.repos import export_tree
from spaceport.logstream import LogWriter, build_key
from spaceport.queue.lease import BuildLease
from spaceport.queue.recovery import MAX_ATTEMPTS, fail_lost_build, note_attempt
from spaceport.settings import Settings
from spaceport.stages import BuildStatus, Stage, building_stage
from spaceport_builder import compiled_deps, prewarm, registry_push
from spaceport_builder.base_images import BaseImageError, ensure_base_image, torch_index_url
from spaceport_builder.build_limits import apply_build_limits
from spaceport_builder.build_secrets import docker_request
from spaceport_builder.image_build import (
    BuildCancelled,
    BuildFailed,
    BuildRequest,
    index_build_args,
    run_build,
)
from spaceport_builder.packs import BuildContext, BuildPack, pack_for
from spaceport_builder.packs.base import DEPS_STAGE, SDK_STAGE
from spaceport_builder.repo_fetch import FetchError, repository_for

log = structlog.get_logger(__name__)

REGISTRY_HINT = (
    "The image in the Dockerfile's FROM line is not on this node and no container registry "
    "answered. Base the Dockerfile on an image the node has (e.g. {base}: Python, uv, user "
    "1000), or ask the operator for a registry mirror."
)


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
    hardware: str | None


@dataclass
class Built:
    """A successful build; `warm`: its compiled dependency stage is not cached yet."""

    image: str
    warm: bool = False


def image_tag(space_pk: int, owner: str, name: str, sha: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", f"{owner}-{name}".lower()).strip("-")
    return f"spaceport/space-{space_pk}-{slug}:{sha[:12]}"


def claim(client: redis.Redis, build_id: int) -> Claimed | None:
    """Mark the build running (the caller holds the Space's lease); None if nothing to do.

    A build already `running` was started by a worker that died: Celery gave its task back.
    It is built again until MAX_ATTEMPTS, then failed with a reason.
    """
    with session_scope() as session:
        build = session.get(Build, build_id)
        if build is None or build.status not in (BuildStatus.QUEUED, BuildStatus.RUNNING):
            return None
        attempts = note_attempt(client, build_id)
        if attempts > MAX_ATTEMPTS:
            fail_lost_build(session, build, attempts - 1)
            return None
        space = build.space
        serving = active_deployment(session, space.id) is not None
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
            space.hardware_requested,
        )


def describe(build_id: int) -> Claimed | None:
    """What `claim` returns, for a build in any state (the warm task's view)."""
    with session_scope() as session:
        build = session.get(Build, build_id)
        if build is None:
            return None
        space = build.space
        return Claimed(
            build_id,
            space.id,
            space.owner,
            space.name,
            space.sdk,
            build.commit_sha,
            build.no_cache,
            False,
            space.hardware_requested,
        )


def is_cancelled(build_id: int) -> bool:
    with session_scope() as session:
        build = session.get(Build, build_id)
        return build is None or build.status == BuildStatus.CANCELLED


def superseded(build_id: int) -> bool:
    """A newer build of the same Space is queued or running (or this one was cancelled)."""
    with session_scope() as session:
        build = session.get(Build, build_id)
        if build is None or build.status == BuildStatus.CANCELLED:
            return True
        newer = session.scalar(
            select(Build.id).where(
                Build.space_id == build.space_id,
                Build.id > build_id,
                Build.status.in_([BuildStatus.QUEUED, BuildStatus.RUNNING]),
            )
        )
        return newer is not None


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
        if build.status == BuildStatus.CANCELLED:  # keeps the reason the canceller gave
            status, message = BuildStatus.CANCELLED, build.error_message or message
        build.status, build.finished_at = status.value, utcnow()
        began = build.started_at or build.created_at
        seconds = (build.finished_at - began).total_seconds() if began else 0.0
        build.log, build.error_message, build.image = writer.text(), message, image
        build.cache_report = cache or {}
        # A succeeded build keeps its building stage: the deploy says APP_STARTING once it
        # holds the Space (the reconciler restarts Spaces left APP_STARTING with nothing
        # starting, so saying it earlier would start the app twice).
        if stage is not None and status != BuildStatus.CANCELLED:
            serving = active_deployment(session, space.id) is not None
            # A failed build leaves the serving version up: report it, keep RUNNING.
            space.stage = (Stage.RUNNING if serving else stage).value
            space.error_message = message
    record_build(status, stage, message, seconds)
    writer.close(status.value)


def record_build(status: BuildStatus, stage: Stage | None, message: str | None, s: float) -> None:
    """Count the finished build (telemetry): its result, its duration, a failure's reason."""
    result = status.value.lower()
    telemetry.count("spaceport_builds", result=result)
    telemetry.observe("spaceport_build_duration_seconds", max(0.0, s), result=result)
    if status == BuildStatus.FAILED:
        disk = (message or "").startswith(DISK_FULL.split("{", 1)[0])
        reason = "disk_full" if disk else (stage.value if stage else "internal")
        telemetry.count("spaceport_build_failures", reason=reason)


def failure_message(exc: BuildFailed, writer: LogWriter) -> str:
    """BUILD_ERROR's message: the failing step, the error, and that step's last lines."""
    lines = exc.output or [line.split(" ", 1)[-1] for line in writer.kept[-15:]]
    where = f" at step `{exc.step}`" if exc.step else ""
    tail = "\n".join(lines[-15:])
    return f"Build failed{where}: {exc}\n--- last log lines ---\n{tail}"


def uses_gpu(settings: Settings, hardware: str | None) -> bool:
    try:
        return get_flavor(hardware or settings.default_hardware).gpus > 0
    except UnknownFlavor:
        return False


def prepare(
    settings: Settings,
    job: Claimed,
    config: SpaceConfig,
    repo_dir: Path,
    workdir: Path,
    log_line: Callable[[str], None],
) -> tuple[BuildPack, BuildRequest, str]:
    """Choose the base image, render the Dockerfile, and assemble the build request."""
    gpu = uses_gpu(settings, job.hardware)
    apply_build_limits(settings, log_line)
    base = ensure_base_image(settings, config.python_version, gpu, log=log_line)
    ctx = BuildContext(
        repo_dir=repo_dir,
        config=config,
        base_image=base,
        installer=settings.build_installer,
        cache=settings.build_cache,
        cache_id=settings.build_cache_id,
        gpu=gpu,
        torch_index_url=torch_index_url() if gpu else "",
    )
    pack = pack_for(ctx)
    req = BuildRequest(
        context=repo_dir,
        dockerfile=repo_dir / "Dockerfile",
        tag=image_tag(job.space_pk, job.owner, job.name, job.sha),
        no_cache=job.no_cache or not settings.build_cache,
        build_args=index_build_args(settings, replace_extra=not pack.uses_repo_dockerfile()),
        labels={
            LABEL_SPACE: f"{job.owner}/{job.name}",
            LABEL_COMMIT: job.sha,
            LABEL_SPACE_PK: str(job.space_pk),
            LABEL_INSTANCE: settings.instance,
        },
    )
    if pack.uses_repo_dockerfile():
        return pack, docker_request(settings, job.space_pk, req, workdir, log_line), base
    req.dockerfile = workdir / "Dockerfile"
    text = pack.render()
    req.dockerfile.write_text(text)
    log_line(f"--- Dockerfile ({config.sdk}, base image {base}) ---")
    for line in text.splitlines():
        log_line(line)
    log_line("------------------")
    return pack, req, base


def run_build_job(
    settings: Settings, build_id: int, writer: LogWriter, client: redis.Redis, workdir: Path
) -> Built | None:
    """Build the image of a claimed build; None when nothing was built (failed, cancelled)."""
    job = claim(client, build_id)
    if job is None:
        if is_cancelled(build_id):
            writer.close(BuildStatus.CANCELLED.value)  # ends the stream readers wait on
        return None
    started = time.monotonic()
    writer.write(f"Building {job.owner}/{job.name} at {job.sha[:12]}")
    try:
        repo_dir = workdir / "repo"
        repo = repository_for(settings, job.owner, job.name, job.sha, writer.write)
        export_tree(repo, job.sha, repo_dir)
        config = load_config(repo_dir, default_sdk=job.sdk)
        _record_config(job, config.raw, config.sdk)
        pack, req, base = prepare(settings, job, config, repo_dir, workdir, writer.write)
        stages = None
        if pack.has_compiled_stage():
            stages = compiled_deps.choose(settings, pack, req, base, compiled=False)
        report = run_build(settings, req, writer.write, cancelled=lambda: is_cancelled(build_id))
        if registry_push.enabled(settings):  # cluster mode: the nodes pull it from there
            registry_push.push(settings, req.tag, writer.write)
        cache = {
            **report.as_dict(),
            **(stages or compiled_deps.Stages("", "")).report(),
            "prewarm": prewarm.modules(config, repo_dir),
            "seconds": round(time.monotonic() - started, 2),
        }
        reused = "dependencies reused" if cache["dependencies_cached"] else "dependencies built"
        writer.write(f"Built {req.tag} in {cache['seconds']} s ({reused})")
        finish(job, BuildStatus.SUCCEEDED, writer, image=req.tag, cache=cache)
        cold = stages is not None and (  # something to compile (compiled_deps.choose)
            stages.deps_stage == DEPS_STAGE
            or (
                stages.sdk_stage == SDK_STAGE
                and bool(stages.sdk_fp)
                and not compiled_deps.is_ready(settings, stages.sdk_fp or "", sdk=True)
            )
        )
        return Built(req.tag, warm=cold)
    except NoAppFile as exc:
        writer.write(f"ERROR: {exc}")
        finish(job, BuildStatus.FAILED, writer, stage=Stage.NO_APP_FILE, message=str(exc))
    except ConfigError as exc:
        writer.write(f"ERROR: {exc}")
        finish(job, BuildStatus.FAILED, writer, stage=Stage.CONFIG_ERROR, message=str(exc))
    except BuildCancelled as exc:
        writer.write(str(exc))
        finish(job, BuildStatus.CANCELLED, writer, message=str(exc))
    except BuildFailed as exc:
        if exc.step and exc.step.startswith("[internal] load metadata for"):
            base = f"{settings.base_image_repo}:{settings.default_python}"
            exc.output.append(REGISTRY_HINT.format(base=base))
        writer.write(f"ERROR: {exc}")
        message = failure_message(exc, writer)
        if NO_SPACE in "\n".join(exc.output).lower():
            message = DISK_FULL.format(detail="in the image build") + "\n" + message
        finish(job, BuildStatus.FAILED, writer, stage=Stage.BUILD_ERROR, message=message)
    except (BaseImageError, FetchError) as exc:  # said what to fix
        writer.write(f"ERROR: {exc}")
        finish(job, BuildStatus.FAILED, writer, stage=Stage.BUILD_ERROR, message=str(exc))
    except Exception as exc:  # an unexpected bug must not leave the build stuck
        if _disk_full(exc, workdir):
            message = DISK_FULL.format(detail=str(exc).strip().splitlines()[-1][:300])
            log.error("build.disk_full", build=build_id, error=str(exc))
        else:
            log.exception("build.crashed", build=build_id)
            message = f"internal build error: {exc}"
        writer.write(f"ERROR: {message}")
        finish(job, BuildStatus.FAILED, writer, stage=Stage.BUILD_ERROR, message=message)
    return None


NO_SPACE = "no space left on device"
MIN_FREE_BYTES = 1024**2


def _disk_full(exc: Exception, workdir: Path) -> bool:
    """Whether a failure came from a full disk: said so (ENOSPC), or the build's own working
    directory has (almost) no room left (tar, for one, reports only a short write)."""
    if NO_SPACE in str(exc).lower():
        return True
    try:
        return shutil.disk_usage(workdir).free < MIN_FREE_BYTES
    except OSError:
        return False


DISK_FULL = (
    "The build stopped because the build machine's disk is full ({detail}). Nothing in the "
    "Space changed; a running version keeps serving. The node's operator must free space "
    "(unused images: `docker image prune`; the data dir), then rebuild or push again."
)


def _record_config(job: Claimed, raw: dict[str, object], sdk: str) -> None:
    with session_scope() as session:
        space = session.get(Space, job.space_pk)
        if space is not None:
            space.card_data, space.sdk = raw, sdk


def _space_of(build_id: int) -> int | None:
    with session_scope() as session:
        build = session.get(Build, build_id)
        return build.space_id if build is not None else None


def builds_dir(settings: Settings) -> Path:
    """Where builds keep their working files (export, Dockerfile, secrets): the node's own."""
    path = settings.run_dir / "builds"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _clean_stale_workdirs(settings: Settings, build_id: int) -> None:
    """Working files a killed attempt of this build left behind."""
    for stale in builds_dir(settings).glob(f"{build_id}-*"):
        shutil.rmtree(stale, ignore_errors=True)


def built_not_deployed(build_id: int) -> bool:
    """The build succeeded but its worker died before deploying it (Celery redelivered it)."""
    with session_scope() as session:
        build = session.get(Build, build_id)
        if build is None or build.status != BuildStatus.SUCCEEDED or not build.image:
            return False
        started = session.scalar(select(Deployment.id).where(Deployment.build_id == build_id))
        return started is None


def build_and_deploy(settings: Settings, build_id: int) -> bool:
    """The worker's task: build under the Space's lease, then chain the control plane's deploy
    (queue.chain: the builder names it, never imports it) and warm. True when deployed (or
    the deploy was queued elsewhere)."""
    space_pk = _space_of(build_id)
    if space_pk is None:
        return False
    client = redis.Redis.from_url(settings.redis_url)
    writer = LogWriter(client, build_key(build_id), settings.build_log_max_bytes)
    lease = BuildLease(client, space_pk, build_id)
    if not lease.acquire(give_up=lambda: is_cancelled(build_id), log=writer.write):
        writer.close(BuildStatus.CANCELLED.value)
        return False
    with lease:
        _clean_stale_workdirs(settings, build_id)
        workdir = Path(tempfile.mkdtemp(prefix=f"{build_id}-", dir=builds_dir(settings)))
        try:
            built = run_build_job(settings, build_id, writer, client, workdir)
            if built is None and not built_not_deployed(build_id):
                return False
            if superseded(build_id):
                log.info("build.superseded_before_deploy", build=build_id)
                return False
            deployed = queue.chain(queue.DEPLOY_TASK, space_pk, build_id)
            if built is not None and built.warm:  # when the node is idle (warm_job.py)
                queue.send_warm(build_id)
            return deployed is not False
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
