"""Reconciliation: kill the parts and every Space ends up where it was, without a new build.

A running Space (its container killed; the API, the build worker and the proxy killed) comes back
serving; a paused Space stays paused. The machine's dockerd is shared while developing, so
its restart test runs only in CI (or with SPACEPORT_TEST_RESTART_DOCKERD=1), last.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from tests.conftest import Node, may_restart
from tests.runtime.helpers import (
    alive,
    app_text,
    containers,
    echo_space,
    hf,
    kill_process,
    pid_of,
    settled,
    wait_for,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pair(node: Node) -> Iterator[tuple[str, str]]:
    running = echo_space(node, "keeper")
    paused = echo_space(node, "held")
    hf(node).pause_space(paused)
    wait_for(lambda: containers(paused, all=True) == [], 30)
    yield running, paused
    for space_id in (running, paused):
        hf(node).delete_repo(space_id, repo_type="space", missing_ok=True)


def build_count(space_ids: tuple[str, ...]) -> int:
    from sqlalchemy import func, select

    from spaceport.db.models import Build, Space
    from spaceport.db.session import session_scope

    total = 0
    with session_scope() as session:
        for space_id in space_ids:
            owner, name = space_id.split("/")
            total += (
                session.scalar(
                    select(func.count(Build.id))
                    .join(Space, Space.id == Build.space_id)
                    .where(Space.owner == owner, Space.name == name)
                )
                or 0
            )
    return total


def back_where_they_were(node: Node, running: str, paused: str, timeout: float = 60) -> None:
    node.wait_stage(running, {"RUNNING"}, timeout=timeout)
    wait_for(lambda: app_text(node, running)[0] == 200, timeout)
    assert node.runtime(paused)["stage"] == "PAUSED"
    assert containers(paused, all=True) == []


def test_killed_container_is_restarted(node: Node, pair: tuple[str, str]) -> None:
    running, paused = pair
    builds = build_count(pair)
    victim = settled(node, running)
    victim.kill()
    wait_for(lambda: (c := containers(running)) and c[0].id != victim.id, 60)
    back_where_they_were(node, running, paused)
    assert build_count(pair) == builds


def test_killed_control_plane_changes_nothing(node: Node, pair: tuple[str, str]) -> None:
    from spaceport.node import ensure_api

    running, paused = pair
    builds, serving = build_count(pair), settled(node, running).id
    kill_process(node, "api")
    assert app_text(node, running)[0] == 200  # the proxy keeps serving without the control plane
    ensure_api(node.settings, print)
    time.sleep(2 * node.settings.reconcile_interval_s)  # the new reconciler looked around
    back_where_they_were(node, running, paused)
    assert [c.id for c in containers(running)] == [serving]
    assert build_count(pair) == builds


def test_killed_worker_changes_nothing(node: Node, pair: tuple[str, str]) -> None:
    from spaceport.node import ensure_worker

    running, paused = pair
    builds, serving = build_count(pair), settled(node, running).id
    old = pid_of(node, "worker")
    kill_process(node, "worker")
    ensure_worker(node.settings, print)
    assert pid_of(node, "worker") != old and alive(pid_of(node, "worker"))
    back_where_they_were(node, running, paused)
    assert [c.id for c in containers(running)] == [serving]
    assert build_count(pair) == builds


def test_killed_proxy_gets_its_routes_back(node: Node, pair: tuple[str, str]) -> None:
    from spaceport.proxy import proxy_process

    running, paused = pair
    builds = build_count(pair)
    proxy = proxy_process(node.settings)
    old = pid_of(node, proxy.name.lower())
    kill_process(node, proxy.name.lower())
    # The reconciler starts it again: a bare Caddy, routes loaded next; nginx with its saved
    # table.
    wait_for(lambda: proxy.is_running() and pid_of(node, proxy.name.lower()) != old, 30)
    back_where_they_were(node, running, paused, timeout=30)  # the reconciler reloads them
    assert build_count(pair) == builds


def test_killed_resolver_is_started_again(node: Node, pair: tuple[str, str]) -> None:
    """With the Caddy backend every app route asks the resolver where its app runs
    (proxy/resolver.py), so `up` starts it: killed, it is started again by the reconciler, and
    the apps answer as before. (The node may run nginx, which needs no resolver: the resolver
    is started here as `up` starts it for Caddy.)"""
    from spaceport.proxy.resolver import ensure_resolver

    running, paused = pair
    builds, serving = build_count(pair), settled(node, running).id
    ensure_resolver(node.settings, print)
    old = pid_of(node, "resolver")
    kill_process(node, "resolver")

    def restarted() -> bool:
        try:
            pid = pid_of(node, "resolver")
        except (FileNotFoundError, ValueError):
            return False
        return pid != old and alive(pid)

    wait_for(restarted, 30)
    back_where_they_were(node, running, paused, timeout=30)
    assert [c.id for c in containers(running)] == [serving]
    assert build_count(pair) == builds


def test_node_down_and_up_is_not_a_crash(node: Node, pair: tuple[str, str]) -> None:
    """`spaceport down` then `spaceport up` (what a reboot of the machine looks like): the
    app containers `down` stopped (exit 143) are no crash. The Space never shows RUNTIME_ERROR
    and records no failure, `up` reports it once it settled (RUNNING), and it serves again.
    (It once read "The app exited (code 143)" and printed "Not running: RUNTIME_ERROR".)"""
    import threading

    from sqlalchemy import select

    from spaceport import node as node_mod
    from spaceport.db.models import Space
    from spaceport.db.session import session_scope

    running, paused = pair
    builds, before = build_count(pair), settled(node, running)
    owner, name = running.split("/")

    def row() -> tuple[str, int, str | None]:
        with session_scope() as session:
            space = session.scalars(
                select(Space).where(Space.owner == owner, Space.name == name)
            ).one()
            return space.stage, space.crash_count, space.error_message

    crashes_before = row()[1]
    api_log = node.settings.logs_dir / "api.log"
    log_offset = api_log.stat().st_size
    node_mod.down(node.settings, print)
    before.reload()
    assert before.status == "exited"  # stopped, kept: SIGTERM's exit code (143) or SIGKILL's

    seen: list[str] = []  # every stage the database shows from now on
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            stage = row()[0]
            if not seen or seen[-1] != stage:
                seen.append(stage)
            time.sleep(0.05)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        report = node_mod.up(node.settings, print, examples=None)
        assert report.stages[running] == "RUNNING", report.stages
        assert report.stages[paused] == "PAUSED", report.stages
        back_where_they_were(node, running, paused)
    finally:
        done.set()
        watcher.join()
    assert "RUNTIME_ERROR" not in seen, seen
    assert row() == ("RUNNING", crashes_before, None)
    assert not node.runtime(running).get("errorMessage")
    with api_log.open("rb") as fh:
        fh.seek(log_offset)
        lines = fh.read().decode(errors="replace").splitlines()
    crashed = [line for line in lines if "runtime.crashed" in line and running in line]
    assert crashed == []
    assert build_count(pair) == builds


def machine_dockerd() -> int:
    """The machine's own dockerd: its default pidfile, else the one started without a data
    root of its own (the dev cluster's engines, tests/cluster, run beside it)."""
    pidfile = Path("/var/run/docker.pid")
    if pidfile.exists():
        return int(pidfile.read_text().strip())
    found = subprocess.run(["pidof", "dockerd"], capture_output=True, text=True, check=True)
    for pid in found.stdout.split():
        if b"--data-root" not in Path(f"/proc/{pid}/cmdline").read_bytes():
            return int(pid)
    raise AssertionError("no dockerd of the machine's own is running")


def restart_dockerd() -> None:
    """Stop the machine's dockerd and start it again the way it was started."""
    if (
        shutil.which("systemctl")
        and subprocess.run(["systemctl", "is-active", "--quiet", "docker"], check=False).returncode
        == 0
    ):
        subprocess.run(["systemctl", "restart", "docker"], check=True)
    else:
        pid = machine_dockerd()
        os.kill(pid, signal.SIGTERM)
        wait_for(lambda: not alive(pid), 60, every=0.5)
        with open("/var/log/dockerd.log", "ab") as log:
            subprocess.Popen(
                ["dockerd"],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def answers() -> bool:
        try:
            return bool(docker.from_env(timeout=5).ping())
        except Exception:
            return False

    wait_for(answers, 60, every=0.5)


@pytest.mark.dockerd_restart
@may_restart("dockerd_restart")
def test_dockerd_restart_brings_spaces_back(node: Node, pair: tuple[str, str]) -> None:
    running, paused = pair
    builds, before = build_count(pair), settled(node, running).id
    restart_dockerd()
    wait_for(lambda: (c := containers(running)) and c[0].id != before, 90, every=0.5)
    back_where_they_were(node, running, paused, timeout=90)
    assert build_count(pair) == builds
