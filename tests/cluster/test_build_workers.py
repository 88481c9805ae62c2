"""A build worker on another machine (`spaceport worker --builds-only`): it shares no disk with
the control plane, builds on its own engine (here the dev cluster's node2), fetches the Space's
repository over git HTTP and the base image from the registry, pushes the image there, and the
control plane deploys it: the Space answers, built where the control plane never was. Once the
Space is deleted, the worker removes what it kept of it (its image, its repository mirror)."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
from celery import Celery
from huggingface_hub import HfApi

from spaceport.engine import app_init
from spaceport.engine.base import LABEL_SPACE
from spaceport.queue import BUILD_QUEUE
from tests.cluster.conftest import ClusterNode, wait_for
from tests.cluster.test_cluster import answers, static_app
from tests.conftest import unique

pytestmark = pytest.mark.slow
BUILD_NODE = "node2"


def _control(cluster: ClusterNode) -> Celery:
    assert cluster.env is not None
    return Celery(broker=cluster.env["SPACEPORT_REDIS_URL"])


@pytest.fixture
def build_worker(cluster: ClusterNode, tmp_path: Path) -> Iterator[str]:
    """A build-only worker with a data dir of its own on node2's engine, the only one taking
    builds meanwhile (the control plane's worker stops consuming the build queue)."""
    from spaceport import devcluster

    assert cluster.env is not None
    data = tmp_path / "worker-data"
    data.mkdir()
    if (cluster.data / "secret.key").exists():  # the secrets' key, as an operator copies it
        shutil.copy(cluster.data / "secret.key", data / "secret.key")
    env = {
        **{k: v for k, v in cluster.env.items() if k != "SPACEPORT_REGISTRY_PUSH"},
        "SPACEPORT_DATA": str(data),
        "SPACEPORT_DATABASE_URL": f"sqlite:///{cluster.data / 'spaceport.db'}",
        "DOCKER_HOST": devcluster.node(BUILD_NODE).engine,
    }
    log = (tmp_path / "worker.log").open("w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "spaceport.cli.main",
            "worker",
            "--builds-only",
            "--concurrency",
            "1",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    control = _control(cluster)
    ours = f"build-{proc.pid}@{socket.gethostname()}"
    theirs = f"spaceport@{socket.gethostname()}"
    try:
        wait_for(lambda: control.control.ping(destination=[ours], timeout=2), 60, "worker up")
        cancelled = control.control.cancel_consumer(BUILD_QUEUE, destination=[theirs], reply=True)
        assert cancelled, f"the control plane's worker {theirs} did not answer"
        yield ours
    finally:
        control.control.add_consumer(BUILD_QUEUE, destination=[theirs], reply=True)
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        print((tmp_path / "worker.log").read_text()[-3000:])


def test_a_space_built_on_a_worker_elsewhere_runs(
    cluster: ClusterNode, build_worker: str, tmp_path: Path
) -> None:
    marker = unique("remote-build")
    hf = HfApi(endpoint=cluster.url, token=cluster.token)
    space_id = cluster.create_space(marker, sdk="static")
    made = [space_id]
    try:
        pushed = cluster.push(static_app(tmp_path, marker), space_id)
        assert pushed.returncode == 0, pushed.stderr
        cluster.wait_stage(space_id, {"RUNNING"}, timeout=300)
        wait_for(lambda: answers(cluster, space_id, marker), 30, "the Space answers")

        lines = _build_log(cluster, space_id)
        assert any(
            line.startswith("Fetching the repository from the control plane") for line in lines
        ), lines
        built = [line for line in lines if line.startswith("Built ")]
        assert built, lines[-30:]
        tag = built[-1].split()[1]
        # Made on node2's engine; the control plane's own engine never had it.
        assert _has_tag(cluster.engine(BUILD_NODE), tag), tag
        assert not _has_tag(docker.from_env(), tag), tag
        # Its entrypoint, read from the registry, runs under spaceport-init as anywhere else.
        assert _command(space_id)[0] == app_init.PATH, _command(space_id)

        # Deleted: the next build on that worker removes what it kept of it (the control
        # plane's janitor never sees that machine's engine or disk); the other Space's stay.
        mirrors = tmp_path / "worker-data" / "cache" / "repos" / "admin"
        assert (mirrors / f"{marker}.git").is_dir()
        hf.delete_repo(space_id, repo_type="space")
        other = unique("remote-build")
        next_id = cluster.create_space(other, sdk="static")
        made.append(next_id)
        pushed = cluster.push(static_app(tmp_path, other), next_id)
        assert pushed.returncode == 0, pushed.stderr
        cluster.wait_stage(next_id, {"RUNNING"}, timeout=300)
        wait_for(
            lambda: (
                not (mirrors / f"{marker}.git").exists()
                and not _has_tag(cluster.engine(BUILD_NODE), tag)
            ),
            30,
            "its image and mirror removed there",
        )
        assert (mirrors / f"{other}.git").is_dir()
        assert any(_has_tag(cluster.engine(BUILD_NODE), t) for t in _built(cluster, next_id))
    finally:
        for made_id in made:
            hf.delete_repo(made_id, repo_type="space", missing_ok=True)


def _built(cluster: ClusterNode, space_id: str) -> list[str]:
    """The tags its latest build's log says it built."""
    return [line.split()[1] for line in _build_log(cluster, space_id) if line.startswith("Built ")]


def _build_log(cluster: ClusterNode, space_id: str) -> list[str]:
    """The latest build's lines, as `GET /api/spaces/{id}/logs/build` streams them."""
    with cluster.api() as api:
        body = api.get(f"/api/spaces/{space_id}/logs/build", timeout=30).text
    return [json.loads(line[5:])["data"] for line in body.splitlines() if line.startswith("data:")]


def _has_tag(engine: docker.DockerClient, tag: str) -> bool:
    return any(tag in image.tags for image in engine.images.list())


def _command(space_id: str) -> list[str]:
    from spaceport import devcluster

    manager = docker.DockerClient(base_url=devcluster.managers()[0])
    services = manager.services.list(filters={"label": f"{LABEL_SPACE}={space_id}"})
    assert services, space_id
    spec = services[0].attrs["Spec"]["TaskTemplate"]["ContainerSpec"]
    return [*spec.get("Command", []), *spec.get("Args", [])]
