"""The database (PostgreSQL, the production path) briefly unavailable loses nothing.

A control plane on its own PostgreSQL database: while the server is stopped, API calls get a
clear 503 that says to try again (never a 500 or a hang), the process stays up, and once the
server is back the same process answers again (pooled connections are checked before use)
with every row where it was.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import REDIS_DB, may_restart
from tests.runtime.helpers import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.postgres_restart, may_restart("postgres_restart")]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cluster() -> list[str]:
    """`pg_ctlcluster` arguments (version, name) of the cluster on port 5432."""
    out = subprocess.run(["pg_lsclusters", "-h"], capture_output=True, text=True, check=True)
    for line in out.stdout.splitlines():
        version, name, port = line.split()[:3]
        if port == "5432":
            return [version, name]
    raise AssertionError(f"no PostgreSQL cluster on port 5432:\n{out.stdout}")


@pytest.fixture
def api_on_postgres(
    pg_url: str, tmp_path: Path
) -> Iterator[tuple[httpx.Client, subprocess.Popen[bytes]]]:
    port, token = _free_port(), "sp_test_" + uuid.uuid4().hex
    env = {  # not the session node's shared GPU pool: this bare API would start its broker
        **{k: v for k, v in os.environ.items() if not k.startswith("SPACEPORT_ZERO_GPU")},
        "SPACEPORT_DATA": str(tmp_path / "data"),
        "SPACEPORT_DATABASE_URL": pg_url,
        "SPACEPORT_API_PORT": str(port),
        "SPACEPORT_URL": f"http://localhost:{port}",
        "SPACEPORT_REDIS_URL": f"redis://127.0.0.1:6379/{REDIS_DB + 1}",
        "SPACEPORT_ADMIN_TOKEN": token,
    }
    log = (tmp_path / "api.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "spaceport.cli.main", "api"], env=env, stdout=log, stderr=log
    )
    client = httpx.Client(
        base_url=f"http://127.0.0.1:{port}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )

    def healthy() -> bool:
        try:
            return client.get("/api/v1/health").status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(healthy, 60, every=0.3)
        yield client, proc
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        client.close()
        print((tmp_path / "api.log").read_text()[-3000:])


def test_database_outage_answers_503_and_recovers(
    api_on_postgres: tuple[httpx.Client, subprocess.Popen[bytes]],
) -> None:
    client, proc = api_on_postgres
    create = {"type": "space", "name": "before-outage", "sdk": "static"}
    assert client.post("/api/repos/create", json=create).status_code == 200
    cluster = _cluster()
    subprocess.run(["pg_ctlcluster", *cluster, "stop", "-m", "fast"], check=True)
    try:
        for request in (
            lambda: client.get("/api/spaces/admin/before-outage"),
            lambda: client.get("/api/spaces/admin/before-outage/runtime"),
            lambda: client.post("/api/repos/create", json={**create, "name": "during-outage"}),
        ):
            r = request()
            assert r.status_code == 503, r.text
            assert "database does not answer" in r.json()["error"]
            assert r.headers["retry-after"] == "5"
        assert proc.poll() is None, "the API process died with its database"
    finally:
        subprocess.run(["pg_ctlcluster", *cluster, "start"], check=True)
    wait_for(lambda: client.get("/api/spaces/admin/before-outage").status_code == 200, 60, 0.5)
    assert client.get("/api/spaces/admin/during-outage").status_code == 404  # nothing half-made
    r = client.post("/api/repos/create", json={**create, "name": "after-outage"})
    assert r.status_code == 200, r.text
    assert proc.poll() is None
