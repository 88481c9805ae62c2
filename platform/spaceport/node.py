"""Bring a whole node up or down: dockerd, Redis, API, worker, the proxy, base image, examples.

`up` starts only what is not running and returns once every component answers, so running it
twice is harmless. `down` stops what `up` started; the data dir stays.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import docker
import httpx
import redis
from docker.models.containers import Container

from spaceport.settings import Settings
from spaceport.supervisor import StartError, start_process, stop_process, venv_bin
from spaceport.zerogpu.process import ensure_gpu_broker

Say = Callable[[str], None]


@dataclass
class UpReport:
    console_url: str
    admin_token_file: Path | None
    apps: dict[str, str] = field(default_factory=dict)
    stages: dict[str, str] = field(default_factory=dict)


def docker_ok() -> bool:
    try:
        return bool(docker.from_env(timeout=5).ping())
    except Exception:
        return False


def redis_ok(settings: Settings) -> bool:
    try:
        return bool(redis.Redis.from_url(settings.redis_url, socket_timeout=2).ping())
    except redis.RedisError:
        return False


def api_ok(settings: Settings) -> bool:
    try:
        url = f"http://{settings.api_upstream}/api/v1/health"
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def ensure_docker(settings: Settings, say: Say) -> None:
    if docker_ok():
        return
    dockerd = shutil.which("dockerd")
    if dockerd is None or os.geteuid() != 0:
        raise StartError(
            "the Docker engine does not answer: start it (as root: `dockerd &`, or "
            "`systemctl start docker`), or install docker.io"
        )
    say("starting dockerd")
    start_process(settings, "dockerd", [dockerd], docker_ok, timeout_s=60)


def ensure_app_init(settings: Settings, say: Say) -> None:
    """spaceport-init, which every app starts under: built now (once per node), so that a
    missing compiler stops `up` with the fix instead of failing each app's start."""
    from spaceport.engine import app_init

    if not app_init.enabled(settings):
        return
    try:
        app_init.binary(settings)
    except app_init.AppInitError as exc:
        raise StartError(str(exc)) from exc


def isolate_builds(settings: Settings, say: Say) -> None:
    """Builds run on Docker's default bridge: firewall it like the apps' network, so a build
    step cannot reach host services or a metadata address (it keeps the internet and DNS)."""
    if not settings.build_isolation or os.geteuid() != 0:
        return
    from spaceport.engine import network_policy

    try:
        if network_policy.apply(settings.build_bridge):
            say(f"build network {settings.build_bridge} firewalled")
    except network_policy.NetworkPolicyError as exc:
        say(f"warning: could not firewall builds: {exc}")


def ensure_zram(settings: Settings, say: Say) -> None:
    """The node's compressed swap, where idle apps' cold memory goes (engine/zram.py); a node
    that cannot have one runs as before, without the compressed tier, and says why."""
    from spaceport.engine import zram

    if settings.zram_size_percent <= 0 or settings.compress_after_s <= 0:
        return
    size = int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    try:
        swap, made = zram.ensure(size * settings.zram_size_percent // 100)
    except zram.ZramError as exc:
        say(f"warning: no zram swap ({exc}): idle apps are not compressed (spaceport doctor)")
        return
    if made:
        say(f"zram swap set up: {swap.describe()}")


def ensure_redis(settings: Settings, say: Say) -> None:
    if redis_ok(settings):
        return
    url = urlparse(settings.redis_url)
    server = shutil.which("redis-server")
    if url.hostname not in ("127.0.0.1", "localhost") or server is None:
        raise StartError(
            f"Redis does not answer at {settings.redis_url}: start it, or install redis-server"
        )
    say(f"starting redis-server on port {url.port or 6379}")
    start_process(
        settings,
        "redis",
        [
            server,
            "--port",
            str(url.port or 6379),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--dir",
            str(settings.run_dir),
        ],
        lambda: redis_ok(settings),
    )


def ensure_api(settings: Settings, say: Say) -> None:
    if start_process(
        settings,
        "api",
        [sys.executable, "-m", "spaceport.cli.main", "api"],
        lambda: api_ok(settings),
        timeout_s=90,
    ):
        say(f"started the API on {settings.api_upstream}")


def worker_argv(concurrency: int = 2, builds_only: bool = False) -> list[str]:
    """The node's worker (builds and the control plane's tasks), or with `builds_only` a build
    worker for another machine: the builder's tasks only, on the `build` queue, named uniquely
    (several may share a host), each deploy handed back to the control plane (queue.chain)."""
    from spaceport.queue import BUILD_QUEUE, CONTROL_QUEUE

    app, queues, name = "spaceport.worker", f"{CONTROL_QUEUE},{BUILD_QUEUE}", "spaceport@%h"
    if builds_only:
        app, queues, name = "spaceport_builder.tasks", BUILD_QUEUE, f"build-{os.getpid()}@%h"
    return [
        venv_bin("celery"),
        "-A",
        app,
        "worker",
        "-Q",
        queues,
        "--concurrency",
        str(concurrency),
        "--loglevel",
        "INFO",
        "-n",
        name,
    ]


def ensure_worker(settings: Settings, say: Say) -> None:
    def alive() -> bool:
        return (settings.logs_dir / "worker.log").exists()

    if start_process(settings, "worker", worker_argv(), alive, timeout_s=30):
        say("started the build worker")


def ensure_proxy(settings: Settings, say: Say) -> None:
    from spaceport.lifecycle.proxy_routes import sync_routes
    from spaceport.proxy import proxy_process

    proxy = proxy_process(settings)
    if not proxy.is_running():
        say(f"starting {proxy.name} on {settings.listen}")
        asyncio.run(proxy.start())
    sync_routes(settings)
    if settings.https:
        from spaceport.proxy.tls import push_certificates

        push_certificates(settings)  # the stored ones at once; the reconciler orders the rest


def publish_node_helper(settings: Settings, base: str, say: Say) -> None:
    """Cluster mode: the base image (Python, nothing else) in the registry as the nodes' helper
    image (`node_helper_image`, engine/node_helper.py), which each node pulls when it first
    has root work to do."""
    from spaceport.engine import node_helper
    from spaceport_builder import registry_push

    if registry_push.enabled(settings):
        name = registry_push.publish(
            settings, base, settings.node_helper_image, lambda line: say(f"  node helper: {line}")
        )
        if name:
            # Helpers run from exactly this image (its id), whatever the tag says later.
            node_helper.note_published(settings, str(docker.from_env().images.get(base).id))
            say(f"node helper image: {name}")


def up(
    settings: Settings, say: Say = print, *, examples: Path | None = None, wait: bool = True
) -> UpReport:
    from spaceport.composition import prepare
    from spaceport.proxy.resolver import ensure_resolver
    from spaceport_builder.base_images import ensure_base_image

    settings.ensure_dirs()
    ensure_docker(settings, say)
    ensure_app_init(settings, say)
    isolate_builds(settings, say)
    ensure_zram(settings, say)
    ensure_redis(settings, say)
    token = prepare(settings)
    ensure_api(settings, say)
    ensure_worker(settings, say)
    ensure_gpu_broker(settings, say)
    if settings.proxy == "caddy":
        ensure_resolver(settings, say)  # where Caddy finds each app (nginx has its own table)
    ensure_proxy(settings, say)
    base = ensure_base_image(settings, None, False, log=lambda line: say(f"  base image: {line}"))
    publish_node_helper(settings, base, say)
    report = UpReport(
        console_url=settings.url,
        admin_token_file=None if settings.admin_token else settings.data / "admin.token",
    )
    if token:
        say(f"admin token (shown once): {token}")
    if examples is not None and examples.is_dir():
        from spaceport.examples import push_examples

        report.apps = push_examples(settings, examples, say)
    if wait:
        report.stages = wait_settled(settings, say)
    return report


# Stages on the way to another: `up` waits while any Space shows one.
TRANSITIONAL = frozenset(
    {"BUILDING", "APP_STARTING", "RUNNING_BUILDING", "RUNNING_APP_STARTING", "DELETING"}
)


def stages_now(settings: Settings) -> dict[str, tuple[str, bool]]:
    """Every Space's stage, and whether it has settled: not on its way to another stage, and
    RUNNING only with its container running (a Space `up` found stopped is not yet looked at)."""
    from sqlalchemy import select

    from spaceport.db.models import Deployment, Space
    from spaceport.db.session import session_scope
    from spaceport.engine import make_backend
    from spaceport.stages import DeploymentStatus

    with session_scope() as session:
        rows = session.execute(
            select(Space.owner, Space.name, Space.stage, Deployment.container_id)
            .outerjoin(
                Deployment,
                (Deployment.space_id == Space.id)
                & (Deployment.status == DeploymentStatus.ACTIVE.value),
            )
            .order_by(Space.owner, Space.name, Deployment.id)
        ).all()
    backend = make_backend(settings)
    out: dict[str, tuple[str, bool]] = {}
    for owner, name, stage, container in rows:
        settled = stage not in TRANSITIONAL
        if stage == "RUNNING":
            state = backend.inspect(container) if container else None
            settled = state is not None and (state.running or state.paused)
        out[f"{owner}/{name}"] = (stage, settled)
    return out


def wait_settled(settings: Settings, say: Say = print, timeout_s: float = 600) -> dict[str, str]:
    """Wait (at most `timeout_s`) until no Space is on its way to another stage, printing every
    change as it happens; returns each Space's stage."""
    last: dict[str, str] = {}
    deadline = time.monotonic() + timeout_s
    first = True
    while True:
        now = stages_now(settings)
        for space_id, (stage, settled) in now.items():
            if last.get(space_id) != stage and not (first and settled):
                say(f"{space_id}: {stage}")
            last[space_id] = stage
        first = False
        if all(settled for _, settled in now.values()):
            return last
        if time.monotonic() > deadline:
            waiting = sorted(k for k, (_, settled) in now.items() if not settled)
            say(f"still on their way after {timeout_s:.0f} s: {', '.join(waiting)}")
            return last
        time.sleep(1)


def down(settings: Settings, say: Say = print) -> None:
    from spaceport.proxy.caddy_process import CaddyProcess
    from spaceport.proxy.nginx import NginxProcess

    # The API first: its reconciler would start a proxy or an app again that it saw stop.
    for name in ("api", "worker", "gpu-broker"):
        if stop_process(settings, name):
            say(f"stopped {name}")
    for proxy in (CaddyProcess(settings), NginxProcess(settings)):
        if proxy.is_running():  # the configured one, or one left from another setting
            asyncio.run(proxy.stop())
            say(f"stopped {proxy.name}")
    stop_apps(settings, say)
    for name in ("resolver", "redis", "dockerd"):
        if stop_process(settings, name):
            say(f"stopped {name}")


STOP_CONCURRENCY = 16  # app containers stopped at once by `down` (the engine's calls overlap)


def stop_apps(settings: Settings, say: Say) -> None:
    """Stop (not remove) this node's app containers, first recording that Spaceport stops
    them: on `up` the reconciler starts their Spaces again, and reports no crash."""
    if not docker_ok():
        return
    from spaceport.engine.base import LABEL_DEPLOYMENT, LABEL_INSTANCE
    from spaceport.lifecycle import node_pool

    client = docker.from_env(max_pool_size=STOP_CONCURRENCY)
    running = client.containers.list(filters={"label": f"{LABEL_INSTANCE}={settings.instance}"})
    labels = [(c.labels or {}).get(LABEL_DEPLOYMENT, "") for c in running]
    try:
        ids = [int(label) for label in labels if label.isdigit()]
        # Taken from the node pool: their rows name them, not their labels.
        pooled = [
            str(c.id) for c, lb in zip(running, labels, strict=True) if lb == node_pool.NO_ROW
        ]
        ids += node_pool.deployments_of(pooled) if pooled else []
        owed = record_stop(settings, ids)
    except Exception as exc:  # the database is gone: stop the apps all the same
        say(f"warning: could not record that the apps were stopped ({exc})")
    else:
        if owed:
            say(f"{owed} Space(s) will start again on `spaceport up`")

    def stop(container: Container) -> None:
        with contextlib.suppress(docker.errors.NotFound):  # removed meanwhile by a deploy
            container.stop(timeout=10)

    # All at once: each app gets its own 10 s to exit, not the sum of those before it.
    with ThreadPoolExecutor(max_workers=STOP_CONCURRENCY) as pool:
        list(pool.map(stop, running))
    if running:
        say(f"stopped {len(running)} app container(s)")


def record_stop(settings: Settings, deployment_ids: list[int]) -> int:
    """The node stops these deployments (`down`): not a crash. Each is marked stopped, and a
    Space that should run is owed a start (APP_STARTING, due now), which the reconciler makes
    once the node is up again. Returns how many Spaces are owed one."""
    from sqlalchemy import select

    from spaceport.db.models import Deployment, Space, utcnow
    from spaceport.db.session import session_scope
    from spaceport.lifecycle.desired import Desired
    from spaceport.lifecycle.retire import mark_stopped
    from spaceport.stages import DeploymentStatus, Stage

    owed = 0
    with session_scope() as session:
        for dep in session.scalars(select(Deployment).where(Deployment.id.in_(deployment_ids))):
            space = session.get(Space, dep.space_id)
            if space is None:
                continue
            if dep.status == DeploymentStatus.STANDBY:
                mark_stopped(dep)
            elif dep.status == DeploymentStatus.ACTIVE and space.desired == Desired.RUNNING:
                mark_stopped(dep)
                space.stage = Stage.APP_STARTING.value
                space.retry_at = space.retry_at or utcnow()
                owed += 1
    return owed


def run_quiet(argv: list[str], cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise StartError(f"{' '.join(argv[:3])} failed: {proc.stderr.strip() or proc.stdout}")
    return proc.stdout
