"""Shared fixtures: the real parts (Docker, Redis, nginx, git) and one running Spaceport node.

The node runs with its own data dir, ports (18080 public, 18081 API) and Redis database, so it
never touches a developer's `make up` instance. Tests give their Spaces unique names.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
ARTIFACTS = ROOT / "test-artifacts"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
# Parallel test runs (several developers, one machine) pick their own port and Redis db.
PUBLIC_PORT = int(os.environ.get("SPACEPORT_TEST_PORT", "18080"))
REDIS_DB = int(os.environ.get("SPACEPORT_TEST_REDIS_DB", "5"))


def need(condition: bool, what: str) -> None:
    """A real part is missing: fail in CI (never skip silently), skip on a laptop."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"required for this test and missing in CI: {what}")
    pytest.skip(f"missing: {what}")


CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def chromium(pw: Any, *args: str) -> Any:
    """Debian's Chromium through Playwright, with CHROMIUM_ARGS and `args`."""
    need(shutil.which("chromium") is not None, "chromium (apt-get install chromium)")
    return pw.chromium.launch(
        executable_path=shutil.which("chromium"), args=[*CHROMIUM_ARGS, *args]
    )


def launch_chromium(pw: Any, node: Node, space_id: str) -> Any:
    """Debian's Chromium (through Playwright) that resolves the Space's app host to this
    machine, as a visitor's browser would reach the node."""
    host = node.app_host(space_id).split(":")[0]
    return chromium(pw, f"--host-resolver-rules=MAP {host} 127.0.0.1")


# Tests that restart a machine-wide daemon (dockerd, redis-server, PostgreSQL) stop or disturb
# everything that uses it: they run in CI (or when asked), and at the very end of a run.
RESTARTS = {
    "dockerd_restart": "SPACEPORT_TEST_RESTART_DOCKERD",
    "redis_restart": "SPACEPORT_TEST_RESTART_REDIS",
    "postgres_restart": "SPACEPORT_TEST_RESTART_POSTGRES",
}


def pytest_configure(config: pytest.Config) -> None:
    for marker, variable in RESTARTS.items():
        config.addinivalue_line(
            "markers",
            f"{marker}: restarts the machine's daemon; runs in CI (CI=true) or with "
            f"{variable}=1, skipped elsewhere, and last",
        )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    last = [i for i in items if any(i.get_closest_marker(m) for m in RESTARTS)]
    if last:
        items[:] = [i for i in items if i not in last] + last


def may_restart(marker: str) -> Any:
    """Skip unless this run may restart the daemon `marker` names (always in CI)."""
    variable = RESTARTS[marker]
    allowed = IN_CI or os.environ.get(variable) == "1"
    reason = f"restarts the machine's shared daemon: runs in CI, or set {variable}=1"
    return pytest.mark.skipif(not allowed, reason=reason)


def docker_available() -> bool:
    try:
        import docker

        return bool(docker.from_env(timeout=5).ping())
    except Exception:
        return False


def redis_available(url: str = "redis://127.0.0.1:6379/0") -> bool:
    try:
        import redis

        return bool(redis.Redis.from_url(url, socket_timeout=2).ping())
    except Exception:
        return False


def free_port() -> int:
    """A TCP port nothing listens on now (for a process of the test's own)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def follower_proxy(env: dict[str, str], data: Path) -> Iterator[int]:
    """`spaceport proxy --follow` (a proxy as on another machine) with the platform's `env` but
    a data dir, port and no database of its own; yields its port."""
    import sys

    port = free_port()
    env = {
        **{k: v for k, v in env.items() if k != "SPACEPORT_DATABASE_URL"},
        "SPACEPORT_DATA": str(data),
        "SPACEPORT_LISTEN": f":{port}",
    }
    data.mkdir(parents=True, exist_ok=True)
    with (data / "follower.log").open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "spaceport.cli.main", "proxy", "--follow"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@contextmanager
def hosts_entries(*names: str) -> Iterator[None]:
    """Python's resolver does not resolve *.localhost here: map names to loopback for a test."""
    hosts = Path("/etc/hosts")
    # This call's own marker: parallel runs on one machine each remove only their own lines.
    marker = f"# spaceport:test {uuid.uuid4().hex[:12]}"
    with hosts.open("a") as file:
        file.write("".join(f"127.0.0.1 {n} {marker}\n" for n in names))
    try:
        yield
    finally:
        lines = [ln for ln in hosts.read_text().splitlines(keepends=True) if marker not in ln]
        hosts.write_text("".join(lines))


class RetryDropped(httpx.HTTPTransport):
    """Retry a request the server closed without answering.

    Caddy closes idle keep-alive connections when a route change reloads its config; a request
    sent on one at that instant gets no response and was never processed, so sending it again
    is safe (browsers do the same). Anything else is reported as it happened.
    """

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        for attempt in range(4):
            try:
                return super().handle_request(request)
            except (httpx.RemoteProtocolError, httpx.ConnectError) as exc:
                dropped = "without sending a response" in str(exc) or isinstance(
                    exc, httpx.ConnectError
                )
                if not dropped or attempt == 3:
                    raise
                time.sleep(0.2 * (attempt + 1))
        raise AssertionError("unreachable")


@dataclass
class Node:
    """A running Spaceport node, driven like a user would: HTTP API, git, public URLs."""

    url: str
    token: str
    data: Path
    settings: Any
    port: int = PUBLIC_PORT  # its public entry point (the proxy)
    app_timeout: float = 30  # how long `app_get` waits for an answer

    def api(self, token: str | None = "default") -> httpx.Client:
        tok = self.token if token == "default" else token
        headers = {"Authorization": f"Bearer {tok}"} if tok else {}
        return httpx.Client(
            base_url=self.url, headers=headers, timeout=30, transport=RetryDropped()
        )

    def create_space(self, name: str, sdk: str = "gradio", **extra: Any) -> str:
        with self.api() as c:
            r = c.post(
                "/api/repos/create", json={"type": "space", "name": name, "sdk": sdk, **extra}
            )
            assert r.status_code == 200, r.text
        return f"admin/{name}" if "organization" not in extra else f"{extra['organization']}/{name}"

    def push(
        self, src: Path, space_id: str, token: str | None = None, *, message: str = "update"
    ) -> subprocess.CompletedProcess[str]:
        """Commit `src` (a fresh repo each time, force-pushed) and `git push` it for real."""
        from spaceport.examples import remote_url

        work = Path(self.data / "pushes" / uuid.uuid4().hex)
        shutil.copytree(src, work, symlinks=True)
        env = {
            **os.environ,
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_AUTHOR_NAME": "t",
            "GIT_AUTHOR_EMAIL": "t@example.invalid",
            "GIT_COMMITTER_NAME": "t",
            "GIT_COMMITTER_EMAIL": "t@example.invalid",
        }
        for argv in (
            ["git", "init", "-q", "-b", "main"],
            ["git", "add", "-A"],
            ["git", "commit", "-q", "-m", message],
        ):
            subprocess.run(argv, cwd=work, env=env, check=True, capture_output=True)
        remote = remote_url(self.settings, space_id, token if token is not None else self.token)
        if token == "":
            remote = f"{self.url}/spaces/{space_id}"
        return subprocess.run(
            ["git", "push", "-f", remote, "main:main"],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def runtime(self, space_id: str) -> dict[str, Any]:
        with self.api() as c:
            r = c.get(f"/api/spaces/{space_id}/runtime")
            r.raise_for_status()
            return dict(r.json())

    def wait_stage(
        self, space_id: str, stages: set[str], timeout: float = 240, sha: str | None = None
    ) -> tuple[dict[str, Any], list[str]]:
        """Poll the runtime until its stage is one of `stages`; returns it and the stages seen."""
        seen: list[str] = []
        deadline = time.monotonic() + timeout
        rt: dict[str, Any] = {}
        while time.monotonic() < deadline:
            rt = self.runtime(space_id)
            if not seen or seen[-1] != rt["stage"]:
                seen.append(rt["stage"])
            if rt["stage"] in stages and (sha is None or rt.get("sha") == sha):
                return rt, seen
            time.sleep(0.2)
        raise AssertionError(f"{space_id} never reached {stages}; stages seen {seen}; last {rt}")

    def app_host(self, space_id: str) -> str:
        owner, name = space_id.split("/")
        return f"{self.settings.app_host(owner, name)}:{self.port}"

    def app_get(self, space_id: str, path: str = "/", **kw: Any) -> httpx.Response:
        """GET through the public entry point (the proxy), as a browser on the app's URL would."""
        headers = {"Host": self.app_host(space_id), **kw.pop("headers", {})}
        kw.setdefault("timeout", self.app_timeout)
        return httpx.get(f"http://127.0.0.1:{self.port}{path}", headers=headers, **kw)

    def app_url(self, space_id: str) -> str:
        owner, name = space_id.split("/")
        return str(self.settings.app_url(owner, name))


@pytest.fixture(scope="session")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    need(docker_available(), "a Docker engine (dockerd)")
    need(redis_available(), "redis-server on 127.0.0.1:6379")
    need(shutil.which("git") is not None, "git")
    data = tmp_path_factory.mktemp("spaceport-node")
    token = "sp_test_" + uuid.uuid4().hex
    env = {
        "SPACEPORT_DATA": str(data),
        "SPACEPORT_URL": f"http://localhost:{PUBLIC_PORT}",
        "SPACEPORT_LISTEN": f":{PUBLIC_PORT}",
        "SPACEPORT_API_PORT": str(PUBLIC_PORT + 1),
        "SPACEPORT_REDIS_URL": f"redis://127.0.0.1:6379/{REDIS_DB}",
        "SPACEPORT_ADMIN_TOKEN": token,
        "SPACEPORT_RECONCILE_INTERVAL_S": "2",
        # A wake's first request is held until the app serves (3 s by default): long enough
        # here that a loaded test machine's wakes are held too (tests/runtime/test_sleep.py).
        "SPACEPORT_WAKE_HOLD_S": "10",
        "SPACEPORT_HISTORY_INTERVAL_S": "2",  # the graphs get a point every pass
        # Small push limits so the limit tests stay fast.
        "SPACEPORT_GIT_MAX_FILE_BYTES": str(3 * 1024**2),
        "SPACEPORT_GIT_MAX_FILES": "1500",
        # A tiny flavor for the resource-limit tests (an operator's own flavors look the same).
        # And one under gVisor (tests/safety/test_gvisor.py; scripts/register-gvisor.sh).
        "SPACEPORT_FLAVORS": json.dumps(
            {
                "test-tiny": {"cpus": 0.5, "memory": "256m", "pids": 128},
                "test-gvisor": {"cpus": 1, "memory": "384m", "pids": 256, "runtime": "runsc"},
            }
        ),
        # A small writable-layer limit (tests/safety/test_disk_limits.py), checked every 30 s.
        "SPACEPORT_APP_WRITABLE_MAX": "300MiB",
        # Small /data disks, so that filling one is quick.
        "SPACEPORT_DATA_SIZES": '{"small": "64MiB", "medium": "96MiB"}',
        # No standby containers (on by default): the tests count a Space's containers, and
        # tests/runtime/test_standby.py turns them on for its own worker.
        "SPACEPORT_STANDBY_TTL_S": "0",
        # Pages of 3 Spaces in GET /api/spaces: walking every page takes a few Spaces to test.
        "SPACEPORT_LIST_PAGE_MAX": "3",
    }
    from tests.runtime.fake_gpus import fake_gpu_env

    env.update(fake_gpu_env(data))  # a FAKE GPU inventory: test machines have no GPU
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    from spaceport.db import session as db_session
    from spaceport.settings import get_settings

    get_settings.cache_clear()
    db_session.get_engine.cache_clear()
    db_session._factory.cache_clear()
    from spaceport import node as node_mod
    from spaceport.queue import celery_app

    celery_app.cache_clear()
    settings = get_settings()
    import redis

    redis.Redis.from_url(settings.redis_url).flushdb()
    node_mod.up(settings, lambda m: print(f"[node] {m}"), examples=None)
    try:
        yield Node(url=f"http://127.0.0.1:{PUBLIC_PORT}", token=token, data=data, settings=settings)
    finally:
        node_mod.down(settings, lambda m: print(f"[node] {m}"))
        import docker

        client = docker.from_env()
        for c in client.containers.list(
            all=True, filters={"label": f"org.spaceport.instance={settings.instance}"}
        ):
            c.remove(force=True)
        for vol in client.volumes.list(
            filters={"label": f"org.spaceport.instance={settings.instance}"}
        ):
            vol.remove(force=True)
        from spaceport.engine import data_disks

        data_disks.release_all(settings)
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture()
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database, dropped afterwards (SPACEPORT_TEST_POSTGRES_URL: `make test`
    sets it from scripts/test-services.sh)."""
    from sqlalchemy import create_engine, text

    admin_url = os.environ.get("SPACEPORT_TEST_POSTGRES_URL")
    need(admin_url is not None, "PostgreSQL (SPACEPORT_TEST_POSTGRES_URL, set by make test)")
    assert admin_url is not None
    name = f"spaceport_test_{uuid.uuid4().hex[:8]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        admin.dispose()  # a test may have restarted the server under its pooled connection
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
