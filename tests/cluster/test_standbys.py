"""Standbys in cluster mode (lifecycle/standby.py on engine/swarm_backend.py).

After a Gradio Space deploys, a standby service that already imported Gradio runs on some node;
the Space's next code-only version starts in it (its code copied in through that node's
engine). The service's spec still names the standby's image and launcher, so every task made
of it afterwards must run the new version instead: a task Swarm replaced by itself (as a drain
or `docker service update --force` does) and a wake from deep sleep (the platform scales the
service up again), neither of which may wait for code that never comes.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import docker
import httpx
import pytest
from huggingface_hub import HfApi
from sqlalchemy import create_engine, text

from tests.builder.helpers import variant
from tests.cluster.conftest import ClusterNode, platform_env, wait_for
from tests.conftest import unique
from tests.runtime.test_standby import APP

pytestmark = pytest.mark.slow

STANDBY_ENV = {"SPACEPORT_STANDBY_TTL_S": "600", "SPACEPORT_STANDBY_DELAY_S": "1"}


def deployments(cluster: ClusterNode, space_id: str) -> list[dict[str, Any]]:
    """The Space's deployment rows, oldest first, from the platform's database."""
    owner, name = space_id.split("/")
    engine = create_engine(f"sqlite:///{cluster.data / 'spaceport.db'}")
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT d.status, d.container_id, d.commit_sha FROM deployments d "
                    "JOIN spaces s ON s.id = d.space_id "
                    "WHERE s.owner = :owner AND s.name = :name ORDER BY d.id"
                ),
                {"owner": owner, "name": name},
            ).all()
    finally:
        engine.dispose()
    return [{"status": r[0], "container": r[1], "commit": r[2]} for r in rows]


def manager() -> docker.DockerClient:
    from spaceport import devcluster

    return docker.DockerClient(base_url=devcluster.managers()[0], timeout=30)


def service_logs(service: str) -> str:
    logs = manager().services.get(service).logs(stdout=True, stderr=True)
    return b"".join(logs).decode(errors="replace")


def warm_standby(cluster: ClusterNode, space_id: str, timeout: float = 300) -> str:
    """The service of the Space's standby, once its interpreter imported Gradio."""

    def ready() -> str | None:
        rows = [d for d in deployments(cluster, space_id) if d["status"] == "standby"]
        if not rows or not rows[-1]["container"]:
            return None
        service = str(rows[-1]["container"])
        return service if "waiting for the app" in service_logs(service) else None

    return wait_for(ready, timeout, "a standby that imported Gradio", every=1)


def serving(cluster: ClusterNode, space_id: str) -> dict[str, Any]:
    [active] = [d for d in deployments(cluster, space_id) if d["status"] == "active"]
    return active


def push_app(cluster: ClusterNode, tmp: Path, space_id: str, greeting: str, reqs: str) -> str:
    """Push the app answering `greeting`; the commit, once that version serves."""
    app = variant(tmp, "gradio-hello", **{"app.py": APP.format(greeting=greeting)})
    (app / "requirements.txt").write_text(reqs)
    pushed = cluster.push(app, space_id)
    assert pushed.returncode == 0, pushed.stderr
    sha = HfApi(endpoint=cluster.url, token=cluster.token).space_info(space_id).sha
    assert sha

    def serves() -> bool:
        rows = deployments(cluster, space_id)
        return any(d["status"] == "active" and d["commit"] == sha for d in rows)

    wait_for(serves, 300, f"{greeting} serving")
    cluster.wait_stage(space_id, {"RUNNING"}, timeout=120)
    return sha


def answer(cluster: ClusterNode, space_id: str) -> str:
    """What the app answers through the proxy, as gradio_client would ask it."""
    host = {"Host": cluster.app_host(space_id)}
    base = f"http://127.0.0.1:{cluster.port}/gradio_api/call/greet"
    r = httpx.post(base, json={"data": ["World"]}, headers=host, timeout=30)
    if r.status_code != 200:
        return f"HTTP {r.status_code}"
    stream = httpx.get(f"{base}/{r.json()['event_id']}", headers=host, timeout=60).text
    return next((ln[5:].strip() for ln in stream.splitlines() if ln.startswith("data:")), "")


def answers(cluster: ClusterNode, space_id: str, expected: str, timeout: float, what: str) -> None:
    wait_for(lambda: answer(cluster, space_id) == expected, timeout, what, every=1)


def running_task(service: str) -> str:
    """The id of the service's task that runs now."""
    tasks = manager().services.get(service).tasks(filters={"desired-state": "running"})
    return next((str(t["ID"]) for t in tasks if t["Status"]["State"] == "running"), "")


def noted(service: str) -> dict[str, Any]:
    """What the platform noted on the service when its standby was taken (`took`)."""
    labels = manager().services.get(service).attrs["Spec"].get("Labels") or {}
    return dict(json.loads(labels.get("org.spaceport.runs", "{}")))


def runs_launcher(service: str) -> bool:
    """Whether the service's spec still runs the standby's launcher (`python -c ...`)."""
    spec = manager().services.get(service).attrs["Spec"]["TaskTemplate"]["ContainerSpec"]
    return "-c" in (spec.get("Args") or [])


def test_a_code_only_push_starts_in_a_standby_on_a_node(
    cluster: ClusterNode, tmp_path: Path
) -> None:
    space_id = cluster.create_space(unique("swarm-standby"), sdk="gradio")
    reqs = f"# {uuid.uuid4().hex}\n"  # a dependency set of its own
    try:
        with platform_env(cluster, STANDBY_ENV):
            push_app(cluster, tmp_path, space_id, "Hello", reqs)
            standby = warm_standby(cluster, space_id)
            assert serving(cluster, space_id)["container"] != standby
            task = running_task(standby)

            # A code-only push: the new version runs in the standby's service, its code
            # copied into the task's container on its node, its own commit in its env.
            sha = push_app(cluster, tmp_path, space_id, "Howdy", reqs)
            active = serving(cluster, space_id)
            assert (active["container"], active["commit"]) == (standby, sha)
            answers(cluster, space_id, f'["Howdy, World! ({sha})"]', 60, "Howdy answers")
            # Serving in the very task that imported Gradio (nothing restarted it), with the
            # version it runs noted for the next one.
            assert running_task(standby) == task and runs_launcher(standby)
            assert noted(standby)["task"] == task and noted(standby)["image"].endswith(sha[:12])

            # Swarm replaces the task by itself from the service's spec (as a drain does):
            # the platform makes it again of the version the standby was told to run.
            manager().services.get(standby).force_update()
            wait_for(lambda: not runs_launcher(standby), 60, "made of its version again")
            answers(cluster, space_id, f'["Howdy, World! ({sha})"]', 180, "Howdy after Swarm")

            # The next code-only push goes into the next standby; deep sleep stops its task,
            # and a visitor's wake makes a new one: of the version it ran (the app's own
            # command), not the launcher waiting for a go file that never comes.
            standby = warm_standby(cluster, space_id)
            sha = push_app(cluster, tmp_path, space_id, "Hallo", reqs)
            assert serving(cluster, space_id)["container"] == standby
            answers(cluster, space_id, f'["Hallo, World! ({sha})"]', 60, "Hallo answers")
            with cluster.api() as api:
                r = api.post(f"/api/v1/spaces/{space_id}/sleep", params={"deep": True})
                assert r.status_code == 200, r.text
            cluster.wait_stage(space_id, {"SLEEPING"}, timeout=60)
            cluster.app_get(space_id)
            answers(cluster, space_id, f'["Hallo, World! ({sha})"]', 180, "woken, Hallo")
            assert serving(cluster, space_id)["container"] == standby
            assert not runs_launcher(standby)
    finally:
        HfApi(endpoint=cluster.url, token=cluster.token).delete_repo(
            space_id, repo_type="space", missing_ok=True
        )


def test_a_deep_sleeping_space_wakes_into_its_wake_standby_on_a_node(
    cluster: ClusterNode, tmp_path: Path
) -> None:
    """With a wake-standby budget, a deep-sleeping Space keeps a standby service of its own
    image on some node; a visitor's wake runs the app in it (told so through that node's
    engine), noted on the service so that its later tasks run the app too."""
    from spaceport.lifecycle.wake_standby import STANDBY_MIB

    space_id = cluster.create_space(unique("swarm-wake"), sdk="gradio")
    reqs = f"# {uuid.uuid4().hex}\n"
    try:
        with platform_env(cluster, {"SPACEPORT_WAKE_STANDBY_BUDGET_MIB": str(STANDBY_MIB)}):
            sha = push_app(cluster, tmp_path, space_id, "Hello", reqs)
            with cluster.api() as api:
                r = api.post(f"/api/v1/spaces/{space_id}/sleep", params={"deep": True})
                assert r.status_code == 200, r.text
            cluster.wait_stage(space_id, {"SLEEPING"}, timeout=60)
            standby = warm_standby(cluster, space_id)
            assert serving(cluster, space_id)["container"] != standby

            cluster.app_get(space_id)  # a visitor wakes it
            answers(cluster, space_id, f'["Hello, World! ({sha})"]', 120, "woken, Hello")
            assert serving(cluster, space_id)["container"] == standby
            assert noted(standby)["task"] == running_task(standby)

            # A task Swarm makes of it later runs the app, not the launcher.
            manager().services.get(standby).force_update()
            wait_for(lambda: not runs_launcher(standby), 60, "made of the app again")
            answers(cluster, space_id, f'["Hello, World! ({sha})"]', 180, "Hello after Swarm")
    finally:
        HfApi(endpoint=cluster.url, token=cluster.token).delete_repo(
            space_id, repo_type="space", missing_ok=True
        )
