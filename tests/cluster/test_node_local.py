"""Node-local work on a cluster, done on the node a Space's task runs on: the compressed tier
(an idle Space's cold memory goes to that node's zram swap, squeezed there by a one-shot helper
on its engine, engine/node_helper.py; the app keeps running and answering through the proxy),
doctor asking each node for its zram swap, and the writable-layer limit (measured by each
node's engine)."""

from __future__ import annotations

import docker
import pytest
from huggingface_hub import HfApi

from tests.cluster.conftest import ClusterNode, wait_for
from tests.cluster.test_cluster import deploy, node_of
from tests.conftest import need, unique
from tests.runtime.helpers import ECHO, error_message
from tests.safety.test_isolation import PROBE

pytestmark = pytest.mark.slow

MiB = 1024**2
BALLAST_MIB = 64


def app_memory(engine: docker.DockerClient, space_id: str) -> tuple[str, int]:
    """The Space's container on its node, and its memory as `docker stats` there shows it."""
    [app] = engine.containers.list(filters={"label": f"org.spaceport.space={space_id}"})
    mem = engine.api.stats(app.id, stream=False, one_shot=True)["memory_stats"]
    stats = mem.get("stats", {})
    cache = stats.get("total_inactive_file", stats.get("inactive_file", 0))
    return app.id, int(mem["usage"] - cache)


def test_an_idle_space_on_a_node_is_compressed_there(cluster: ClusterNode) -> None:
    from spaceport.engine import node_helper, zram

    # The dev nodes share this machine's kernel, so its zram swap is theirs.
    need(zram.active() is not None, "a zram swap (`spaceport up` sets one up as root)")
    space = deploy(cluster, unique("swarm-squeeze"), ECHO, "docker")
    try:
        node = node_of(cluster, space)
        assert node and node != "node1", node  # a worker node: the manager runs no apps
        engine = cluster.engine(node)
        # It cannot swap by itself (Swarm gives a task twice its memory as memory + swap):
        # only the squeeze moves its pages, as on one machine.
        [task] = engine.containers.list(filters={"label": f"org.spaceport.space={space}"})
        host = task.attrs["HostConfig"]
        assert host["MemorySwap"] == host["Memory"] > 0, host
        r = cluster.app_get(space, f"/ballast/{BALLAST_MIB}", timeout=60)
        assert r.status_code == 200 and int(r.text) >= BALLAST_MIB, r.text
        app, before = app_memory(engine, space)
        assert before > BALLAST_MIB * MiB

        def compressed() -> dict:
            rt = cluster.runtime(space)
            return rt if "compressed" in rt else {}

        try:
            rt = wait_for(compressed, 90, "the Space's runtime saying it is compressed")
        except AssertionError as exc:  # what the compressor said instead (skipped: why)
            raise AssertionError(f"{exc}: {cluster.log_lines('compress')}") from exc
        assert rt["stage"] == "RUNNING" and rt["node"] == node
        assert rt["compressed"]["movedBytes"] > BALLAST_MIB * MiB // 2, rt
        same, after = app_memory(engine, space)
        assert same == app and after < before - BALLAST_MIB * MiB // 2, (before, after)

        # Still the same container, answering; no helper left behind on the node.
        r = cluster.app_get(space, timeout=30)
        assert r.status_code == 200 and r.text.startswith("echo "), r.text
        assert app_memory(engine, space)[0] == app
        left = {"label": node_helper.LABEL, "status": "exited"}
        assert engine.containers.list(all=True, filters=left) == []
        wait_for(lambda: "compressed" not in cluster.runtime(space), 30, "a new idle spell")
    finally:
        HfApi(endpoint=cluster.url, token=cluster.token).delete_repo(
            space, repo_type="space", missing_ok=True
        )


def test_doctor_asks_each_node_for_its_zram_swap(cluster: ClusterNode) -> None:
    """Apps are compressed where they run: doctor asks each node that takes Spaces (a helper
    on its engine), not the control plane's machine; the drained manager is not asked."""
    import json

    from spaceport.engine import zram

    need(zram.active() is not None, "a zram swap (`spaceport up` sets one up as root)")
    out = cluster.spaceport("doctor", "--json")
    check = next(c for c in json.loads(out.stdout)["checks"] if c["name"] == "zram")
    assert check["status"] == "ok", check
    device = zram.active().devices[0]  # type: ignore[union-attr]
    assert f"node2: {device}" in check["detail"] and f"node3: {device}" in check["detail"], check
    assert "node1" not in check["detail"], check


def test_filling_the_writable_layer_on_a_node_stops_the_app(cluster: ClusterNode) -> None:
    """The limit on an app's own files outside /data holds on every node: each node's engine
    measures its tasks' writable layers (asked at once), and the app is restarted from its
    image with the reason said."""
    space = deploy(cluster, unique("swarm-writer"), PROBE, "docker")
    try:
        node = node_of(cluster, space)
        engine = cluster.engine(node)
        [first] = engine.containers.list(filters={"label": f"org.spaceport.space={space}"})
        r = cluster.app_get(space, "/fill?mb=400", timeout=120)  # stopped while writing: fine
        assert r.status_code in (200, 502, 503), r.text[:300]
        message = error_message(cluster, space, "outside /data", 90)
        assert "The app wrote" in message and "keep large files in /data" in message, message

        def gone() -> bool:
            return first.id not in [c.id for c in engine.containers.list(all=True)]

        wait_for(gone, 60, "the filled container removed, with its writable layer")
        # Restarted on its own from its image (on whichever node Swarm picks): it answers.
        wait_for(lambda: cluster.app_get(space, "/").status_code == 200, 180, "the app again")
        assert cluster.runtime(space)["stage"] == "RUNNING"
    finally:
        HfApi(endpoint=cluster.url, token=cluster.token).delete_repo(
            space, repo_type="space", missing_ok=True
        )
