"""Owner operations on real containers, through Hugging Face's client and the native API:
restart without downtime, factory rebuild, pause, stop/start, hardware, variables and secrets,
run logs across restarts, storage, crash handling, delete.

Every test here drives one echo-app Space (a stdlib HTTP app that starts in milliseconds).
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Iterator

import docker
import httpx
import pytest
from huggingface_hub import SpaceHardware

from tests.conftest import PUBLIC_PORT, Node, need, unique
from tests.runtime.fake_gpus import FAKE_UUIDS
from tests.runtime.helpers import (
    ECHO,
    app_text,
    containers,
    echo_space,
    hf,
    proxy_reloads,
    settled,
    the_container,
    wait_for,
)

pytestmark = [
    pytest.mark.slow,
    # huggingface_hub warns about Hugging Face's own cpu-basic sleep policy: not ours.
    pytest.mark.filterwarnings("ignore:If your Space runs on the default:UserWarning"),
]


@pytest.fixture(scope="module")
def space(node: Node) -> Iterator[str]:
    space_id = echo_space(node, "ops")
    yield space_id
    hf(node).delete_repo(space_id, repo_type="space", missing_ok=True)


def test_restart_swaps_container_without_downtime(node: Node, space: str) -> None:
    """A restart moves the Space to a new container without a failed request, for visitors
    on new connections and on one keep-alive connection (plain httpx, no retries: a Caddy
    reload would close it under them), and without reloading the proxy."""
    before = settled(node, space).id
    config = proxy_reloads(node)
    errors: list[str] = []
    answers: list[str] = []
    done = threading.Event()

    def poll(keep_alive: bool) -> None:
        client = httpx.Client(base_url=f"http://127.0.0.1:{PUBLIC_PORT}", timeout=30)
        while not done.is_set():
            try:
                if keep_alive:
                    r = client.get("/", headers={"Host": node.app_host(space)})
                else:  # a new connection each time, as a visitor's page load opens one
                    r = node.app_get(space)
            except httpx.HTTPError as exc:
                errors.append(repr(exc))
                continue
            if r.status_code != 200 or not r.text.startswith("echo "):
                errors.append(f"{r.status_code} {r.text[:80]}")
            else:
                answers.append(r.text)
        client.close()

    pollers = [threading.Thread(target=poll, args=(keep,)) for keep in (False, True)]
    for poller in pollers:
        poller.start()
    try:
        rt = hf(node).restart_space(space)
        assert rt.stage in ("RUNNING_APP_STARTING", "APP_STARTING")
        node.wait_stage(space, {"RUNNING"}, timeout=60)
        after = wait_for(lambda: (c := containers(space)) and len(c) == 1 and c[0].id, 30)
        time.sleep(0.5)
    finally:
        done.set()
        for poller in pollers:
            poller.join()
    assert after != before
    assert not errors, errors[:5]
    assert len(set(answers)) == 2, "traffic moved from the old container to the new one"
    assert proxy_reloads(node) == config, "a restart reloaded the proxy"


def test_variables_and_secrets_reach_the_app_and_secrets_stay_hidden(
    node: Node, space: str
) -> None:
    api = hf(node)
    first = settled(node, space).id
    api.add_space_variable(space, "GREETING", "hello from a variable", description="shown")
    api.add_space_secret(space, "API_KEY", "s3cr3t-value-42", description="never shown")
    api.add_space_variable(space, "SHOW_SECRET", "API_KEY")  # the app prints the secret

    variables = api.get_space_variables(space)
    assert variables["GREETING"].value == "hello from a variable"
    assert variables["GREETING"].description == "shown"
    secrets = api.get_space_secrets(space)
    assert set(secrets) == {"API_KEY"} and secrets["API_KEY"].description == "never shown"
    with node.api() as c:
        raw = c.get(f"/api/spaces/{space}/secrets").text
    assert "s3cr3t-value-42" not in raw

    # Each change restarts the Space; the new container sees both.
    wait_for(lambda: app_text(node, space, "/env/SHOW_SECRET") == (200, "API_KEY"), 60)
    assert app_text(node, space, "/env/API_KEY") == (200, "s3cr3t-value-42")
    assert app_text(node, space, "/env/GREETING") == (200, "hello from a variable")
    assert the_container(space).id != first

    # Encrypted at rest: the database file never holds the value.
    # Read by another process: closing a file descriptor of the database in this one would drop
    # every POSIX lock SQLite holds on it here (this process reads the database as the node runs).
    db = subprocess.run(
        ["cat", str(node.settings.data / "spaceport.db")], capture_output=True, check=True
    ).stdout
    assert b"s3cr3t-value-42" not in db

    # Masked in the run logs, as huggingface_hub reads them.
    lines = list(api.fetch_space_logs(space))
    assert any("the secret is ***" in line for line in lines), lines
    assert not any("s3cr3t-value-42" in line for line in lines)

    api.delete_space_variable(space, "SHOW_SECRET")
    api.delete_space_secret(space, "API_KEY")
    assert set(api.get_space_variables(space)) == {"GREETING"}
    assert api.get_space_secrets(space) == {}
    wait_for(lambda: app_text(node, space, "/env/API_KEY") == (200, ""), 60)


def test_bad_variable_key_is_refused(node: Node, space: str) -> None:
    with node.api() as c:
        r = c.post(f"/api/spaces/{space}/variables", json={"key": "1-BAD", "value": "x"})
    assert r.status_code == 400
    assert "invalid key '1-BAD'" in r.json()["error"]


def test_run_logs_stream_follows_restarts(node: Node, space: str) -> None:
    first = settled(node, space).id[:12]  # the app prints its hostname: the id's start
    seen: list[str] = []
    got_second = threading.Event()

    def read() -> None:
        headers = {"Authorization": f"Bearer {node.token}"}
        url = f"{node.url}/api/spaces/{space}/logs/run"
        with httpx.stream("GET", url, headers=headers, timeout=60) as r:
            assert r.headers["content-type"].startswith("text/event-stream")
            for line in r.iter_lines():
                if line.startswith("data: {"):
                    event = json.loads(line[6:])
                    assert event["timestamp"].endswith("Z")
                    seen.append(event["data"])
                    if sum("echo app starting" in s for s in seen) >= 2:
                        got_second.set()
                        return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    wait_for(lambda: any("echo app starting" in s for s in seen), 20)
    hf(node).restart_space(space)
    assert got_second.wait(60), seen
    starts = [s for s in seen if "echo app starting" in s]
    assert starts[0] == f"echo app starting in {first}\n"
    node.wait_stage(space, {"RUNNING"}, timeout=60)
    second = the_container(space).id[:12]
    assert starts[1] == f"echo app starting in {second}\n" and second != first


def test_pause_holds_the_space_until_restart(node: Node, space: str) -> None:
    settled(node, space)
    config = proxy_reloads(node)
    rt = hf(node).pause_space(space)
    assert rt.stage == "PAUSED"
    wait_for(lambda: containers(space, all=True) == [], 30)
    page = node.app_get(space, headers={"Accept": "application/json"})
    assert page.status_code == 503 and page.json()["stage"] == "PAUSED"
    time.sleep(2.5)  # a reconciler pass: visitors do not wake a paused Space
    assert node.runtime(space)["stage"] == "PAUSED"
    assert containers(space, all=True) == []

    rt = hf(node).restart_space(space)
    assert rt.stage == "APP_STARTING"
    node.wait_stage(space, {"RUNNING"}, timeout=60)
    assert app_text(node, space)[0] == 200
    # The paused Space's route stayed in the proxy, not live: neither step reloaded it.
    assert proxy_reloads(node) == config


def test_stop_and_start_native(node: Node, space: str) -> None:
    with node.api() as c:
        r = c.post(f"/api/v1/spaces/{space}/stop")
        assert r.status_code == 200 and r.json()["stage"] == "STOPPED"
        wait_for(lambda: containers(space, all=True) == [], 30)
        r = c.post(f"/api/v1/spaces/{space}/start")
        assert r.status_code == 200 and r.json()["stage"] == "APP_STARTING"
    node.wait_stage(space, {"RUNNING"}, timeout=60)
    assert app_text(node, space)[0] == 200


def test_only_the_owner_operates_a_space(node: Node, space: str) -> None:
    from spaceport.db.session import session_scope
    from spaceport.services.users import create_user
    from tests.conftest import unique

    with session_scope() as session:
        _, other = create_user(session, unique("mallory"))
    with node.api(other) as c:
        r = c.post(f"/api/spaces/{space}/restart")
    assert r.status_code == 403
    assert f"not allowed to change {space}" in r.json()["error"], r.json()
    with node.api(None) as c:
        assert c.post(f"/api/spaces/{space}/pause").status_code == 401


def test_hardware_sets_container_limits(node: Node, space: str) -> None:
    with node.api() as c:
        r = c.post(f"/api/spaces/{space}/hardware", json={"flavor": "cpu-huge"})
    assert r.status_code == 400 and "unknown hardware 'cpu-huge'" in r.json()["error"]

    rt = hf(node).request_space_hardware(space, SpaceHardware("cpu-upgrade"))
    assert rt.requested_hardware == "cpu-upgrade"
    node.wait_stage(space, {"RUNNING"}, timeout=60)
    host = wait_for(
        lambda: (c := containers(space)) and len(c) == 1 and c[0].attrs["HostConfig"], 30
    )
    ncpu = docker.from_env().info()["NCPU"]  # the engine refuses more CPUs than it has
    assert host["NanoCpus"] == min(8, ncpu) * 10**9
    assert host["Memory"] == 32 * 1024**3
    assert host["PidsLimit"] == 2048
    wait_for(lambda: node.runtime(space)["hardware"]["current"] == "cpu-upgrade", 10)


def test_sleep_time_is_reported_as_gc_timeout(node: Node, space: str) -> None:
    rt = hf(node).set_space_sleep_time(space, 3600)
    assert rt.sleep_time == 3600
    assert node.runtime(space)["gcTimeout"] == 3600
    rt = hf(node).set_space_sleep_time(space, -1)
    assert rt.sleep_time == -1


def test_storage_survives_restart(node: Node, space: str) -> None:
    with node.api() as c:
        r = c.post(f"/api/spaces/{space}/storage", json={"tier": "huge"})
        assert r.status_code == 400 and "small, medium, large" in r.json()["error"]
        assert c.post(f"/api/spaces/{space}/storage", json={"tier": "small"}).status_code == 200
    node.wait_stage(space, {"RUNNING"}, timeout=60)
    wait_for(
        lambda: "/data" in {m["Destination"] for m in the_container(space).attrs["Mounts"]}, 30
    )
    assert app_text(node, space, "/data") == (200, "1")
    assert app_text(node, space, "/data") == (200, "2")
    hf(node).restart_space(space)
    node.wait_stage(space, {"RUNNING"}, timeout=60)
    wait_for(lambda: app_text(node, space, "/data") == (200, "3"), 30)
    assert node.runtime(space)["storage"] == "small"


def test_crash_is_reported_and_restarted_with_backoff(node: Node, space: str) -> None:
    api = hf(node)
    serving = settled(node, space)
    api.add_space_variable(space, "CRASH", "1")
    # The new version exits at start: the old one keeps serving, and says why.
    rt = wait_for(
        lambda: "did not start" in (r := node.runtime(space)).get("errorMessage", "") and r, 60
    )
    assert rt["stage"] == "RUNNING" and "boom: CRASH is set" in rt["errorMessage"]
    assert app_text(node, space)[0] == 200

    serving.kill()  # now nothing serves: RUNTIME_ERROR, automatic restarts with backoff
    rt, _ = node.wait_stage(space, {"RUNTIME_ERROR"}, timeout=30)
    rt = wait_for(
        lambda: "failure 2" in (r := node.runtime(space)).get("errorMessage", "") and r, 60
    )
    assert rt["stage"] == "RUNTIME_ERROR"
    assert "The app exited (code 3) before answering HTTP" in rt["errorMessage"] or (
        "code 3" in rt["errorMessage"]
    )
    assert "boom: CRASH is set, exiting" in rt["errorMessage"]
    assert "restarting automatically in 10 s" in rt["errorMessage"]
    page = node.app_get(space, headers={"Accept": "application/json"})
    assert page.status_code == 503 and page.json()["stage"] == "RUNTIME_ERROR"

    api.delete_space_variable(space, "CRASH")  # a change restarts it, clearing the error
    rt, _ = node.wait_stage(space, {"RUNNING"}, timeout=60)
    assert "errorMessage" not in rt
    assert app_text(node, space)[0] == 200


def test_factory_rebuild_builds_without_cache(node: Node, space: str) -> None:
    from sqlalchemy import select

    from spaceport.db.models import Build, Space
    from spaceport.db.session import session_scope

    owner, name = space.split("/")
    before = settled(node, space).id
    rt = hf(node).restart_space(space, factory_reboot=True)
    assert rt.stage == "RUNNING_BUILDING"
    node.wait_stage(space, {"RUNNING"}, timeout=120)
    with session_scope() as session:
        pk = session.scalar(select(Space.id).where(Space.owner == owner, Space.name == name))
        build = session.scalars(
            select(Build).where(Build.space_id == pk).order_by(Build.id.desc())
        ).first()
        assert build is not None and build.no_cache and build.status == "succeeded"
    wait_for(lambda: (c := containers(space)) and len(c) == 1 and c[0].id != before, 30)


def test_a_pause_during_the_crash_check_is_not_a_crash(node: Node) -> None:
    """The reconciler looks at a running Space's container, the owner pauses it (its container
    stops), then the reconciler sees the exit: that is the pause, not a crash (it once turned
    a paused Space into RUNTIME_ERROR "exited (code 143)")."""
    from spaceport.db.models import Deployment, Space
    from spaceport.db.session import session_scope
    from spaceport.engine import make_backend
    from spaceport.lifecycle import crashes

    space_id = node.create_space(f"pause-race-{time.time_ns()}", sdk="docker")
    owner, name = space_id.split("/")

    def row() -> bool:
        with session_scope() as session:
            return session.query(Space).filter_by(owner=owner, name=name).count() == 1

    wait_for(row, 10, every=0.2)
    with session_scope() as session:
        space = session.query(Space).filter_by(owner=owner, name=name).one()
        dep = Deployment(space_id=space.id, image="none", status="active", container_id="gone")
        session.add(dep)
        session.flush()
        space_pk, dep_id = space.id, dep.id
    hf(node).pause_space(space_id)  # between the reconciler's look and its verdict
    crashes._crashed(node.settings, make_backend(node.settings), space_pk, dep_id, "gone", None)
    rt = node.runtime(space_id)
    assert rt["stage"] == "PAUSED", rt
    assert not rt.get("errorMessage")
    hf(node).delete_repo(space_id, repo_type="space")


@pytest.fixture(scope="module")
def slow_gpu_space(node: Node) -> Iterator[str]:
    """An echo app on a (fake) GPU that is slow to stop: it ignores SIGTERM, so stopping its
    container takes the engine's whole grace (10 s), then SIGKILL."""
    whole = [g for g in node.settings.gpus if g.uuid in FAKE_UUIDS]  # not the shared pool
    need(len(whole) == 2, "the fake GPU inventory (device nodes need root)")
    space_id = node.create_space(unique("slowstop"), sdk="docker", hardware="t4-small")
    hf(node).add_space_variable(space_id, "IGNORE_SIGTERM", "1")
    assert node.push(ECHO, space_id).returncode == 0
    node.wait_stage(space_id, {"RUNNING"}, timeout=180)
    yield space_id
    hf(node).delete_repo(space_id, repo_type="space", missing_ok=True)


def gpu_holders(node: Node) -> set[str]:
    with node.api() as c:
        return {g["space"] for g in c.get("/api/v1/gpus").json() if g["space"]}


def running_again(node: Node, space_id: str) -> None:
    if node.runtime(space_id)["stage"] != "RUNNING":
        hf(node).restart_space(space_id)
    settled(node, space_id)


def test_pause_and_stop_answer_once_container_and_gpu_are_released(
    node: Node, slow_gpu_space: str
) -> None:
    """The stage never lies: when the API says PAUSED (STOPPED), no container of the Space
    exists and its GPU is free, even for an app that takes the engine's whole grace to stop
    (it once said PAUSED while the container ran on for seconds, holding its GPU)."""
    space = slow_gpu_space
    running_again(node, space)
    assert space in gpu_holders(node)
    assert hf(node).pause_space(space).stage == "PAUSED"
    assert containers(space, all=True) == []  # at the moment the answer came
    assert space not in gpu_holders(node)
    assert node.runtime(space)["stage"] == "PAUSED"

    running_again(node, space)
    assert space in gpu_holders(node)
    with node.api() as c:
        r = c.post(f"/api/v1/spaces/{space}/stop")
    assert r.status_code == 200 and r.json()["stage"] == "STOPPED"
    assert containers(space, all=True) == []
    assert space not in gpu_holders(node)
    running_again(node, space)


def test_hardware_change_never_claims_a_version_serves_while_none_does(
    node: Node, slow_gpu_space: str
) -> None:
    """A GPU Space is recreated on a hardware change (its old version stops first, here for
    the engine's whole grace): while nothing serves, the stage visitors and the API see is
    APP_STARTING, never RUNNING_APP_STARTING ("the previous version keeps serving")."""
    space = slow_gpu_space
    running_again(node, space)
    flavor = "t4-medium" if node.runtime(space)["hardware"]["current"] == "t4-small" else "t4-small"
    seen: list[str] = []  # the stage the app's URL answered with, while it had no app
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            try:
                r = node.app_get(space, headers={"Accept": "application/json"})
            except httpx.HTTPError:
                continue
            if r.status_code in (502, 503):
                seen.append(r.json()["stage"])

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        hf(node).request_space_hardware(space, SpaceHardware(flavor))
        wait_for(lambda: node.runtime(space)["hardware"]["current"] == flavor, 120)
        node.wait_stage(space, {"RUNNING"}, timeout=60)
    finally:
        done.set()
        watcher.join()
    assert "APP_STARTING" in seen, seen  # the old version stopped before the new one served
    assert not {"RUNNING", "RUNNING_APP_STARTING", "RUNNING_BUILDING"} & set(seen), seen
