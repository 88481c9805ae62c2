"""A real 3-node Docker Swarm on this machine (spaceport.devcluster), and Spaceport running on it
in cluster mode (SPACEPORT_RUNTIME=swarm), both started once per test session and shared.

The platform runs as `spaceport up` in processes of its own (its settings must not mix with the
single-node `node` fixture's), on its own port, Redis db and data dir.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import docker
import httpx
import pytest

from tests.conftest import PUBLIC_PORT, REDIS_DB, Node, docker_available, need, redis_available

PORT = PUBLIC_PORT + 200
DB = REDIS_DB + 2
T = TypeVar("T")


@dataclass
class ClusterNode(Node):
    """The platform in cluster mode, driven as a user would; `engines` reach each dev node."""

    port: int = PORT
    app_timeout: float = 10
    env: dict[str, str] | None = None

    def engine(self, node_name: str) -> docker.DockerClient:
        from spaceport import devcluster

        return docker.DockerClient(base_url=devcluster.node(node_name).engine, timeout=30)

    def log_lines(self, word: str, last: int = 20) -> list[str]:
        """The platform's last log lines with `word` (for a failure's message)."""
        path = self.data / "logs" / "api.log"
        lines = path.read_text(errors="replace").splitlines() if path.exists() else []
        return [line for line in lines if word in line][-last:]

    def spaceport(self, *args: str) -> subprocess.CompletedProcess[str]:
        """The `spaceport` command with the platform's settings (operator commands)."""
        return subprocess.run(
            [sys.executable, "-m", "spaceport.cli.main", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )


def wait_for(check: Callable[[], T], timeout: float, what: str, every: float = 0.5) -> T:
    """Poll until `check()` is truthy; its value, or an AssertionError naming `what`."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except (httpx.HTTPError, docker.errors.DockerException) as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(every)
    raise AssertionError(f"{what}: not within {timeout} s (last: {last!r})")


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("SPACEPORT_")}


@pytest.fixture(scope="session")
def dev_cluster() -> Iterator[list[Any]]:
    """The dev cluster: made here (and removed after) unless one is up already."""
    need(os.geteuid() == 0, "root, for the dev cluster's network namespaces")
    need(docker_available(), "a Docker engine (dockerd)")
    need(shutil.which("docker-registry") is not None, "docker-registry (make test installs it)")
    from spaceport import devcluster

    made = not devcluster.running()
    nodes = devcluster.up(3, fake_gpus=1)
    try:
        yield nodes
    finally:
        if made:
            devcluster.down()


@pytest.fixture(scope="session")
def cluster(
    dev_cluster: list[Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ClusterNode]:
    """Spaceport in cluster mode on the dev cluster, at http://localhost:PORT."""
    need(redis_available(), "redis-server on 127.0.0.1:6379")
    from spaceport import devcluster
    from spaceport.settings import Settings

    data = tmp_path_factory.mktemp("spaceport-cluster")
    token = "sp_test_" + uuid.uuid4().hex
    values = {
        "SPACEPORT_DATA": str(data),
        "SPACEPORT_URL": f"http://localhost:{PORT}",
        "SPACEPORT_LISTEN": f":{PORT}",
        "SPACEPORT_API_PORT": str(PORT + 1),
        "SPACEPORT_REDIS_URL": f"redis://127.0.0.1:6379/{DB}",
        "SPACEPORT_ADMIN_TOKEN": token,
        "SPACEPORT_RECONCILE_INTERVAL_S": "1",
        "SPACEPORT_RUNTIME": "swarm",
        "SPACEPORT_SWARM_MANAGERS": json.dumps(devcluster.managers()),
        "SPACEPORT_REGISTRY": devcluster.REGISTRY,
        "SPACEPORT_REGISTRY_PUSH": devcluster.REGISTRY_PUSH,
        # Off for the tests that count a Space's tasks; test_standbys turns them on.
        "SPACEPORT_STANDBY_TTL_S": "0",
        # The compressed tier on the nodes (test_node_local) after 20 s idle, not a minute,
        # and a small writable-layer limit there.
        "SPACEPORT_COMPRESS_AFTER_S": "20",
        "SPACEPORT_APP_WRITABLE_MAX": "300MiB",
    }
    env = {**_clean_env(), **values}
    import redis

    redis.Redis.from_url(values["SPACEPORT_REDIS_URL"]).flushdb()
    up = subprocess.run(
        [sys.executable, "-m", "spaceport.cli.main", "up", "--no-examples"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert up.returncode == 0, up.stdout + up.stderr
    settings = Settings(
        data=data,
        url=values["SPACEPORT_URL"],
        listen=values["SPACEPORT_LISTEN"],
        api_port=PORT + 1,
        redis_url=values["SPACEPORT_REDIS_URL"],
        admin_token=token,
    )
    node = ClusterNode(
        url=f"http://127.0.0.1:{PORT}", token=token, data=data, settings=settings, env=env
    )
    try:
        yield node
    finally:
        subprocess.run(
            [sys.executable, "-m", "spaceport.cli.main", "down"],
            env=env,
            capture_output=True,
            timeout=300,
        )
        manager = docker.DockerClient(base_url=devcluster.managers()[0])
        mine = {"label": f"org.spaceport.instance={settings.instance}"}
        for service in manager.services.list(filters=mine):
            service.remove()
        for config in manager.configs.list(filters=mine):  # spaceport-init, once unused
            with contextlib.suppress(docker.errors.APIError):
                config.remove()


@contextlib.contextmanager
def platform_env(cluster: ClusterNode, env: dict[str, str]) -> Iterator[None]:
    """The platform's API and worker running with `env` added to its settings, then as
    before (they read the environment when they start)."""
    from tests.runtime.helpers import restart_processes

    def restart(values: dict[str, str]) -> None:
        saved = dict(os.environ)
        os.environ.clear()
        os.environ.update(values)
        try:
            restart_processes(cluster)
        finally:
            os.environ.clear()
            os.environ.update(saved)

    assert cluster.env is not None
    restart({**cluster.env, **env})
    try:
        yield
    finally:
        restart(cluster.env)
