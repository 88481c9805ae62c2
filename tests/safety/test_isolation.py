"""A hostile app tries to escape from inside a real container, and fails.

Each check runs in `probe_app` (an `sdk: docker` Space) and reports what it could do; the test
asserts the platform stopped it: unprivileged user, no capabilities, no-new-privileges, seccomp,
no Docker socket, no host mounts, and no way to the control plane, Redis, PostgreSQL, the
metadata address or other apps.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import docker
import pytest

from tests.conftest import Node, unique

pytestmark = pytest.mark.slow
PROBE = Path(__file__).parent / "probe_app"


@pytest.fixture(scope="module")
def probes(node: Node) -> list[str]:
    spaces = [node.create_space(unique("probe"), sdk="docker") for _ in range(2)]
    for space in spaces:
        push = node.push(PROBE, space)
        assert push.returncode == 0, push.stderr
    for space in spaces:
        node.wait_stage(space, {"RUNNING"})
    return spaces


def probe(node: Node, space: str, path: str) -> dict[str, Any]:
    resp = node.app_get(space, path, timeout=60)
    assert resp.status_code == 200, resp.text
    return dict(json.loads(resp.text))


def test_runs_as_uid_1000_without_privileges(node: Node, probes: list[str]) -> None:
    seen = probe(node, probes[0], "/probe")
    assert (seen["uid"], seen["gid"]) == (1000, 1000)
    assert int(seen["status"]["CapEff"], 16) == 0, seen["status"]
    assert int(seen["status"]["CapBnd"], 16) == 0, seen["status"]
    assert seen["status"]["NoNewPrivs"] == "1"
    assert seen["status"]["Seccomp"] == "2"  # filtered: Docker's default profile at least
    assert seen["docker_sock"] is False
    assert "Operation not permitted" in seen["chroot_attempt"]
    assert "-1 [rc=0]" in seen["mount_attempt"]  # mount(2) refused


def test_no_host_mounts_and_not_privileged(node: Node, probes: list[str]) -> None:
    client = docker.from_env()
    for container in client.containers.list(filters={"label": f"org.spaceport.space={probes[0]}"}):
        host_config = container.attrs["HostConfig"]
        assert host_config["Privileged"] is False
        assert not host_config.get("Binds")
        for mount in container.attrs["Mounts"]:
            assert mount["Type"] == "volume" and mount["Destination"] == "/data", mount
        assert "docker.sock" not in json.dumps(container.attrs["Mounts"])


def reached_internal(node: Node, space: str, other: str) -> set[str]:
    """What of the control plane, the data stores, the metadata address and the app `other`
    the app `space` could open a connection to (GATEWAY: the host, as the app sees it)."""
    internal = [
        f"GATEWAY:{node.settings.api_port}",  # the API behind the proxy
        "GATEWAY:6379",  # Redis
        "GATEWAY:5432",  # PostgreSQL
        "GATEWAY:2375",  # a Docker TCP socket, if anyone opened one
        "169.254.169.254:80",  # cloud metadata
    ]
    other_ip = probe(node, other, "/ip")["ip"]
    internal.append(f"{other_ip}:7860")  # another app's container
    seen = probe(node, space, "/probe?targets=" + ",".join(internal))
    return {target for target, ok in seen["reach"].items() if ok}


def test_cannot_reach_control_plane_or_data_stores(node: Node, probes: list[str]) -> None:
    reached = reached_internal(node, probes[0], probes[1])
    assert not reached, f"an app reached internal services: {reached}"


def test_app_runtime_setting_picks_the_oci_runtime(node: Node) -> None:
    """SPACEPORT_APP_RUNTIME (gVisor's `runsc` where installed) is the runtime app containers
    get; one the engine does not know fails the start with what to do."""
    from spaceport.engine.base import ContainerSpec, RuntimeBackendError
    from spaceport.engine.docker_backend import DockerBackend

    def spec(name: str) -> ContainerSpec:
        return ContainerSpec(
            space_id="admin/runtime-check",
            deployment_id=0,
            image=f"{node.settings.base_image_repo}:{node.settings.default_python}",
            name=name,
            port=7860,
        )

    backend = DockerBackend(node.settings.model_copy(update={"app_runtime": "runc"}))
    state = backend.create(spec(unique("runtime-runc")))
    try:
        attrs = docker.from_env().containers.get(state.id).attrs
        assert attrs["HostConfig"]["Runtime"] == "runc"
    finally:
        docker.from_env().containers.get(state.id).remove(force=True)

    missing = DockerBackend(node.settings.model_copy(update={"app_runtime": "no-such-runtime"}))
    with pytest.raises(RuntimeBackendError) as failed:
        missing.create(spec(unique("runtime-missing")))
    assert "SPACEPORT_APP_RUNTIME=no-such-runtime" in str(failed.value)
    assert "daemon.json" in str(failed.value)
