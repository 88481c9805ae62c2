"""Apps under gVisor, end to end: a flavor with `runtime: runsc` (the node's `test-gvisor`, set
by tests/conftest.py) runs its apps on gVisor's kernel, registered with the engine by
scripts/register-gvisor.sh as `make test` does (scripts/test-services.sh).

The app answers through the proxy like any other, still runs unprivileged and still cannot
reach the control plane (the firewall holds under gVisor too), sees gVisor's kernel rather
than the host's, and filling its own files outside /data (its writable layer) costs the app
its memory limit, not the node's disk: the app is stopped as out of memory, restarted clean,
and its neighbours never notice.
"""

from __future__ import annotations

import os

import docker
import pytest

from tests.conftest import Node, need, unique
from tests.runtime.helpers import error_message, the_container
from tests.safety.test_isolation import PROBE, probe, reached_internal

pytestmark = pytest.mark.slow
MiB = 1024**2


def _runsc_registered() -> bool:
    return "runsc" in (docker.from_env().info().get("Runtimes") or {})


@pytest.fixture(scope="module")
def sandboxed(node: Node) -> tuple[str, str]:
    """(an app under gVisor, an ordinary app beside it)."""
    need(_runsc_registered(), "gVisor's runsc registered (scripts/register-gvisor.sh)")
    spaces = [
        node.create_space(unique("gvisor"), sdk="docker", hardware="test-gvisor"),
        node.create_space(unique("runc"), sdk="docker"),
    ]
    for space in spaces:
        push = node.push(PROBE, space)
        assert push.returncode == 0, push.stderr
    for space in spaces:
        node.wait_stage(space, {"RUNNING"})
    return spaces[0], spaces[1]


def _engine_disk_free() -> int:
    """Free bytes on the engine's disk (its data root holds the containers' writable layers)."""
    st = os.statvfs(docker.from_env().info()["DockerRootDir"])
    return st.f_bavail * st.f_frsize


def test_app_runs_on_gvisors_kernel_and_stays_confined(
    node: Node, sandboxed: tuple[str, str]
) -> None:
    gvisor, neighbour = sandboxed
    assert the_container(gvisor).attrs["HostConfig"]["Runtime"] == "runsc"
    assert the_container(neighbour).attrs["HostConfig"]["Runtime"] != "runsc"

    seen = probe(node, gvisor, "/probe")
    host_kernel = os.uname().release
    assert host_kernel not in seen["kernel"], seen["kernel"]  # the app sees gVisor's kernel
    assert host_kernel in probe(node, neighbour, "/probe")["kernel"]
    assert (seen["uid"], seen["gid"]) == (1000, 1000)
    assert int(seen["status"]["CapEff"], 16) == 0, seen["status"]
    assert seen["docker_sock"] is False

    reached = reached_internal(node, gvisor, neighbour)
    assert not reached, f"an app under gVisor reached internal services: {reached}"


def test_filling_the_writable_layer_costs_memory_not_the_node_disk(
    node: Node, sandboxed: tuple[str, str]
) -> None:
    gvisor, neighbour = sandboxed
    first = the_container(gvisor).id
    free_before = _engine_disk_free()

    # 800 MB into /home/user/app: more than the flavor's 384 MiB of memory.
    try:
        out = probe(node, gvisor, "/fill?mb=800")["out"]
    except Exception as exc:  # the app died under the request: the proxy's status page
        out = f"request failed: {exc}"
    assert "838860800" not in out, f"the app wrote 800 MB outside /data: {out}"

    error_message(node, gvisor, "out of memory", 120)

    assert free_before - _engine_disk_free() < 100 * MiB, "the app's writes reached the node's disk"
    assert node.app_get(neighbour, "/").status_code == 200

    # Restarted on its own, from its image: the file is gone, the app answers.
    node.wait_stage(gvisor, {"RUNNING"}, timeout=120)
    assert the_container(gvisor).id != first
    assert node.app_get(gvisor, "/").status_code == 200
    gone = "import os; print(os.path.exists('/home/user/app/fill'))"
    check = the_container(gvisor).exec_run(["python", "-c", gone], user="1000")
    assert check.output.strip() == b"False", check.output
