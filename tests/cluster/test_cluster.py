"""Cluster mode on a real 3-node Swarm: Spaces spread over nodes and answer through the proxy,
images travel through the registry, a node failure or a drain moves Spaces without an owner
doing anything, sleep and wake work on any node.

Every test leaves the cluster as it found it (nodes up and active), so each passes alone and
in any order; the Spaces are shared by the module.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import docker
import pytest
from huggingface_hub import HfApi

from tests.cluster.conftest import ClusterNode, wait_for
from tests.conftest import EXAMPLES, follower_proxy, hosts_entries, unique

pytestmark = pytest.mark.slow

GRADIO_PREDICT = """
import sys
from gradio_client import Client
print(Client(sys.argv[1], verbose=False).predict("Swarm", api_name="/greet"))
"""


def static_app(where: Path, marker: str) -> Path:
    app = where / marker
    shutil.copytree(EXAMPLES / "static-site", app)
    (app / "index.html").write_text(f"<!doctype html><title>{marker}</title><p id=m>{marker}</p>")
    return app


def deploy(cluster: ClusterNode, name: str, src: Path, sdk: str) -> str:
    space_id = cluster.create_space(name, sdk=sdk)
    pushed = cluster.push(src, space_id)
    assert pushed.returncode == 0, pushed.stderr
    cluster.wait_stage(space_id, {"RUNNING"}, timeout=600)
    return space_id


def answers(cluster: ClusterNode, space_id: str, marker: str) -> bool:
    r = cluster.app_get(space_id)
    return r.status_code == 200 and marker in r.text


def node_of(cluster: ClusterNode, space_id: str) -> str:
    return str(cluster.runtime(space_id).get("node") or "")


def nodes(cluster: ClusterNode) -> dict[str, dict[str, object]]:
    with cluster.api() as c:
        r = c.get("/api/v1/nodes")
        r.raise_for_status()
        return {n["name"]: n for n in r.json()}


def containers_of(cluster: ClusterNode, node: str, space_id: str) -> list[str]:
    """The Space's containers that run on a node (its engine's own view)."""
    found = cluster.engine(node).containers.list(
        filters={"label": f"org.spaceport.space={space_id}"}
    )
    return [c.name or "" for c in found]


@pytest.fixture(scope="module")
def spaces(cluster: ClusterNode, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """A Gradio Space and a static one, running; their markers."""
    where = tmp_path_factory.mktemp("cluster-apps")
    marker = unique("swarm-static")
    static = deploy(cluster, marker, static_app(where, marker), "static")
    gradio = deploy(cluster, unique("swarm-gradio"), EXAMPLES / "gradio-hello", "gradio")
    hosts = [cluster.app_host(s).split(":")[0] for s in (static, gradio)]
    with hosts_entries(*hosts):
        yield {"static": static, "gradio": gradio, "marker": marker}


def test_spaces_spread_over_nodes_pulled_from_the_registry(
    cluster: ClusterNode, spaces: dict
) -> None:
    static, gradio = spaces["static"], spaces["gradio"]
    on_static, on_gradio = node_of(cluster, static), node_of(cluster, gradio)
    assert on_static and on_gradio and on_static != on_gradio, (on_static, on_gradio)

    # Through the proxy at the platform's one address, whatever node runs them.
    assert answers(cluster, static, spaces["marker"])
    url = f"http://{cluster.app_host(gradio)}/"
    out = subprocess.run(
        [sys.executable, "-c", GRADIO_PREDICT, url], capture_output=True, text=True, timeout=120
    )
    assert "Hello, Swarm!" in out.stdout, out.stdout + out.stderr

    # Its output, live from its node through the manager (Hugging Face's run-logs stream).
    event: dict = {}
    with cluster.api() as c, c.stream("GET", f"/api/spaces/{gradio}/logs/run", timeout=30) as r:
        for line in r.iter_lines():
            if line.startswith("data: {"):
                event = json.loads(line[6:])
                break
    assert event.get("data", "").strip() and event["timestamp"].endswith("Z"), event

    # Built on this machine's engine, run from the registry: the node pulled the image.
    pulled = [
        tag
        for img in cluster.engine(on_gradio).images.list()
        for tag in img.tags
        if "/spaceport/space-" in tag
    ]
    assert any(t.startswith("10.99.0.1:5055/") for t in pulled), pulled

    # The admin view: every node, its state and its Spaces; the fake GPU on the last node.
    listed = nodes(cluster)
    assert sorted(listed) == ["node1", "node2", "node3"]
    assert all(n["state"] == "ready" for n in listed.values())
    assert static in listed[on_static]["spaces"] and gradio in listed[on_gradio]["spaces"]
    assert [g["uuid"] for g in listed["node3"]["gpus"]] == ["GPU-fake-3-0"]
    with cluster.api() as c:
        overview = c.get("/api/v1/admin/overview").json()
    assert sorted(n["name"] for n in overview["nodes"]) == sorted(listed)


def test_a_space_on_a_node_reports_its_cpu_and_memory(cluster: ClusterNode, spaces: dict) -> None:
    """Its container runs on another machine's engine: the numbers come from there (not from
    this machine's cgroups). The console's graphs read them the same way (services/history.py
    through `container_usage`)."""
    from spaceport.proxy.traffic import parse_samples

    gradio = spaces["gradio"]

    def series() -> dict[str, float]:
        with cluster.api() as c:
            r = c.get("/api/v1/metrics")
            r.raise_for_status()
        samples = parse_samples(r.text)
        return {name: v for name, labels, v in samples if labels.get("space") == gradio}

    found = wait_for(
        lambda: (got := series()).get("spaceport_space_memory_bytes") and got,
        30,
        "the Space's memory in the metrics",
    )
    # A Gradio app's Python: 100 MiB and more, about 20 once idle long enough to be compressed.
    assert found["spaceport_space_memory_bytes"] > 10 * 2**20, found
    assert found["spaceport_space_cpu_seconds_total"] > 0.5, found  # it imported Gradio


def test_doctor_checks_every_node_and_the_registry(cluster: ClusterNode) -> None:
    """`spaceport doctor` in cluster mode: the nodes ready, each engine reachable, the
    registry answering; a node that does not say where its engine is fails, naming the fix."""
    from spaceport import devcluster
    from spaceport.engine.swarm_backend import LABEL_ENGINE

    def cluster_check() -> dict[str, str]:
        out = cluster.spaceport("doctor", "--json")
        report = json.loads(out.stdout)
        return dict(next(c for c in report["checks"] if c["name"] == "cluster"))

    ok = cluster_check()
    assert ok["status"] == "ok", ok
    assert "3 node(s) ready (node1, node2, node3)" in ok["detail"], ok
    assert devcluster.REGISTRY_PUSH in ok["detail"], ok

    manager = devcluster_manager()
    node = next(n for n in manager.nodes.list() if n.attrs["Description"]["Hostname"] == "node3")
    url = node.attrs["Spec"]["Labels"][LABEL_ENGINE]
    spec = node.attrs["Spec"]
    node.update({**spec, "Labels": {k: v for k, v in spec["Labels"].items() if k != LABEL_ENGINE}})
    try:
        failed = cluster_check()
        assert failed["status"] == "fail", failed
        assert "node3 does not say where its engine's API is" in failed["detail"], failed
        assert f"--label-add {LABEL_ENGINE}=" in failed["fix"], failed
    finally:
        node.reload()
        labels = {**node.attrs["Spec"]["Labels"], LABEL_ENGINE: url}
        node.update({**node.attrs["Spec"], "Labels": labels})
    assert cluster_check()["status"] == "ok"


def devcluster_manager() -> docker.DockerClient:
    from spaceport import devcluster

    return docker.DockerClient(base_url=devcluster.managers()[0], timeout=30)


def test_node_failure_moves_the_space_and_the_route(
    cluster: ClusterNode, spaces: dict, tmp_path: Path
) -> None:
    """...through the node's proxy and a second one (`spaceport proxy --follow`) alike."""
    static, marker = spaces["static"], spaces["marker"]
    assert cluster.env is not None
    with follower_proxy(cluster.env, tmp_path / "follower") as port:
        second = replace(cluster, port=port)
        wait_for(lambda: answers(second, static, marker), 30, "answers through a second proxy")
        _fail_over(cluster, static, marker, second)


def _fail_over(cluster: ClusterNode, static: str, marker: str, second: ClusterNode) -> None:
    before = cluster.runtime(static)
    dead = before["node"]
    stop = cluster.spaceport("cluster", "stop-node", dead)
    assert stop.returncode == 0, stop.stdout + stop.stderr
    started = time.monotonic()
    try:
        moved = wait_for(
            lambda: (n := node_of(cluster, static)) != dead and n, 90, "moved to a live node"
        )
        wait_for(lambda: answers(cluster, static, marker), 60, "answers from its new node")
        wait_for(lambda: answers(second, static, marker), 10, "the second proxy followed")
        took = time.monotonic() - started
        print(f"failover: {dead} -> {moved} in {took:.1f} s")
        after = cluster.runtime(static)
        assert after["stage"] == "RUNNING" and after["sha"] == before["sha"]
        assert nodes(cluster)[dead]["state"] == "down"
    finally:
        back = cluster.spaceport("cluster", "start-node", dead)
        assert back.returncode == 0, back.stdout + back.stderr
    wait_for(lambda: nodes(cluster)[dead]["state"] == "ready", 60, f"{dead} ready again")
    # Back, it runs nothing twice: Swarm shuts the lost task's container down.
    wait_for(lambda: containers_of(cluster, dead, static) == [], 60, "no duplicate on its return")
    assert answers(cluster, static, marker)
    assert node_of(cluster, static) == moved


def test_drain_moves_spaces_off_a_node(cluster: ClusterNode, spaces: dict) -> None:
    static, marker = spaces["static"], spaces["marker"]
    source = node_of(cluster, static)
    drain = cluster.spaceport(
        "--url", cluster.url, "--token", cluster.token, "nodes", "drain", source
    )
    assert drain.returncode == 0, drain.stdout + drain.stderr
    try:
        assert nodes(cluster)[source]["availability"] == "drain"
        target = wait_for(
            lambda: (n := node_of(cluster, static)) != source and n, 90, "moved off the node"
        )
        wait_for(lambda: answers(cluster, static, marker), 60, "answers after the drain")
        wait_for(lambda: containers_of(cluster, source, static) == [], 60, "gone from the node")
        assert target != source
    finally:
        cluster.spaceport(
            "--url", cluster.url, "--token", cluster.token, "nodes", "activate", source
        )
    assert nodes(cluster)[source]["availability"] == "active"


def test_sleep_and_wake_on_a_node(cluster: ClusterNode, spaces: dict) -> None:
    static, marker = spaces["static"], spaces["marker"]
    node = node_of(cluster, static)
    with cluster.api() as c:
        assert c.post(f"/api/spaces/{static}/sleeptime", json={"seconds": 4}).status_code == 200
    try:
        cluster.wait_stage(static, {"SLEEPING"}, timeout=60)
        # Asleep long enough: its task is stopped, the node gives its memory back.
        wait_for(lambda: containers_of(cluster, node, static) == [], 60, "stopped while asleep")
    finally:
        with cluster.api() as c:
            c.post(f"/api/spaces/{static}/sleeptime", json={"seconds": -1})
    # A visitor wakes it through the proxy: the first request is held while it starts, then
    # sent on to the app (307 to the same URL), or it gets the status page if that is slower.
    first = cluster.app_get(static)
    assert first.status_code in (200, 307, 503), first.text[:300]
    wait_for(lambda: answers(cluster, static, marker), 90, "woken by a visit")
    cluster.wait_stage(static, {"RUNNING"}, timeout=30)


def test_gpu_space_lands_on_the_gpu_node_and_a_second_waits(
    cluster: ClusterNode, dev_cluster: list
) -> None:
    """node3 advertises one fake GPU (the Swarm generic resource `GPU`): a GPU Space runs
    there and gets that device; a second GPU Space waits, saying why, until it is free."""
    from tests.runtime.helpers import ECHO

    first = cluster.create_space(unique("swarm-gpu-a"), sdk="docker", hardware="t4-small")
    second = cluster.create_space(unique("swarm-gpu-b"), sdk="docker", hardware="t4-small")
    try:
        assert cluster.push(ECHO, first).returncode == 0
        cluster.wait_stage(first, {"RUNNING"}, timeout=600)
        assert node_of(cluster, first) == "node3"
        [name] = containers_of(cluster, "node3", first)
        env = cluster.engine("node3").containers.get(name).attrs["Config"]["Env"]
        assert "DOCKER_RESOURCE_GPU=GPU-fake-3-0" in env
        assert [g["heldBy"] for g in nodes(cluster)["node3"]["gpus"]] == [first]

        assert cluster.push(ECHO, second).returncode == 0
        waiting = wait_for(
            lambda: "waiting for a free GPU" in (cluster.runtime(second).get("errorMessage") or ""),
            300,
            "the second GPU Space says it waits",
        )
        assert waiting and cluster.runtime(second)["stage"] == "APP_STARTING"
        with cluster.api() as c:
            assert c.post(f"/api/spaces/{first}/pause").status_code == 200
        cluster.wait_stage(second, {"RUNNING"}, timeout=120)
        assert node_of(cluster, second) == "node3"
    finally:  # deleted: their device is free for whatever runs next
        api = HfApi(endpoint=cluster.url, token=cluster.token)
        for space in (first, second):
            api.delete_repo(space, repo_type="space", missing_ok=True)


def test_an_app_that_exits_says_why_with_its_last_lines(
    cluster: ClusterNode, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Its own output, read from the node that ran it, is in the Space's error."""
    marker = unique("swarm-exit")
    app = tmp_path_factory.mktemp("exit-app") / marker
    shutil.copytree(EXAMPLES / "gradio-hello", app)
    (app / "app.py").write_text(
        f"import sys\nprint('{marker}: cannot start', flush=True)\nsys.exit(3)\n"
    )
    space = cluster.create_space(marker, sdk="gradio")
    try:
        pushed = cluster.push(app, space)
        assert pushed.returncode == 0, pushed.stderr
        rt, _ = cluster.wait_stage(space, {"RUNTIME_ERROR"}, timeout=300)
        assert f"{marker}: cannot start" in rt["errorMessage"], rt
        assert "code 3" in rt["errorMessage"], rt
    finally:
        HfApi(endpoint=cluster.url, token=cluster.token).delete_repo(
            space, repo_type="space", missing_ok=True
        )


def test_storage_space_stays_with_its_disk_and_says_why_its_node_is_down(
    cluster: ClusterNode, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A Space with /data runs on the node that holds its disk; when that node dies the
    Space does not move (its data would stay behind): it says which node is down, and runs
    there again once the node is back, its data intact."""
    marker = unique("swarm-data")
    space = cluster.create_space(marker, sdk="static")
    api = HfApi(endpoint=cluster.url, token=cluster.token)
    try:
        with cluster.api() as c:
            assert c.post(f"/api/spaces/{space}/storage", json={"tier": "small"}).status_code == 200
        pushed = cluster.push(static_app(tmp_path_factory.mktemp("data-app"), marker), space)
        assert pushed.returncode == 0, pushed.stderr
        cluster.wait_stage(space, {"RUNNING"}, timeout=300)
        holder = node_of(cluster, space)
        [name] = containers_of(cluster, holder, space)
        container = cluster.engine(holder).containers.get(name)
        assert any(m["Destination"] == "/data" for m in container.attrs["Mounts"])
        container.exec_run(["sh", "-c", f"echo {marker} > /data/kept"], user="1000")

        stop = cluster.spaceport("cluster", "stop-node", holder)
        assert stop.returncode == 0, stop.stdout + stop.stderr
        try:
            seen: list[dict] = []

            def says_down() -> dict | bool:
                seen.append(r := cluster.runtime(space))
                return r["stage"] == "RUNTIME_ERROR" and r

            try:  # the Swarm notices first (longer when the node was its raft leader)
                down = wait_for(says_down, 180, "the Space says its node is down")
            except AssertionError as exc:
                raise AssertionError(
                    f"{exc}; {seen[-1:]}; {cluster.log_lines('reconcile')}"
                ) from None
            assert f"node {holder} is down" in down["errorMessage"], down
            assert "/data" in down["errorMessage"]
        finally:
            cluster.spaceport("cluster", "start-node", holder)
        cluster.wait_stage(space, {"RUNNING"}, timeout=180)
        assert node_of(cluster, space) == holder
        [name] = containers_of(cluster, holder, space)
        kept = cluster.engine(holder).containers.get(name).exec_run(["cat", "/data/kept"])
        assert kept.output.decode().strip() == marker
        wait_for(lambda: answers(cluster, space, marker), 60, "answers again")

        # Moved by its owner while paused: it runs on the new node, with its data.
        active = [n for n, v in nodes(cluster).items() if v["availability"] == "active"]
        target = next(n for n in sorted(active) if n != holder)
        running = cluster.spaceport(
            "--url", cluster.url, "--token", cluster.token, "storage", "move", space, target
        )
        assert running.returncode != 0 and "pause or stop it first" in running.stderr
        with cluster.api() as c:
            assert c.post(f"/api/spaces/{space}/pause").status_code == 200
        cluster.wait_stage(space, {"PAUSED"}, timeout=60)
        moved = cluster.spaceport(
            "--url", cluster.url, "--token", cluster.token, "storage", "move", space, target
        )
        assert moved.returncode == 0, moved.stdout + moved.stderr
        with cluster.api() as c:
            assert c.post(f"/api/spaces/{space}/restart").status_code == 200
        cluster.wait_stage(space, {"RUNNING"}, timeout=120)
        assert node_of(cluster, space) == target
        [name] = containers_of(cluster, target, space)
        kept = cluster.engine(target).containers.get(name).exec_run(["cat", "/data/kept"])
        assert kept.output.decode().strip() == marker
        left = cluster.engine(holder).volumes.list(
            filters={"label": f"org.spaceport.space={space}"}
        )
        assert left == []  # the old copy is gone
    finally:
        api.delete_repo(space, repo_type="space", missing_ok=True)
