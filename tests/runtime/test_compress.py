"""The compressed tier (lifecycle/compressor.py): an idle RUNNING Space's untouched memory goes
to the node's zram swap; the app keeps running and answering through the proxy, a visitor is
never refused meanwhile, and a crash while compressed is handled like any crash."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator

import docker
import pytest

from tests.conftest import Node, need
from tests.runtime.helpers import containers, echo_space, hf, settled, wait_for

pytestmark = pytest.mark.slow

MiB = 1024**2
BALLAST_MIB = 64


def zram_swap() -> bool:
    from spaceport.engine import zram

    return zram.active() is not None


@pytest.fixture(scope="module")
def compressing(node: Node) -> Iterator[None]:
    """The node's API (whose reconciler compresses) with a short idle time before it."""
    from spaceport.node import ensure_api
    from spaceport.supervisor import stop_process

    need(zram_swap(), "a zram swap (the kernel's zram; `spaceport up` sets one up as root)")
    saved = os.environ.get("SPACEPORT_COMPRESS_AFTER_S")
    os.environ["SPACEPORT_COMPRESS_AFTER_S"] = "3"
    stop_process(node.settings, "api")
    ensure_api(node.settings, print)
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("SPACEPORT_COMPRESS_AFTER_S", None)
        else:
            os.environ["SPACEPORT_COMPRESS_AFTER_S"] = saved
        stop_process(node.settings, "api")
        ensure_api(node.settings, print)


@pytest.fixture(scope="module")
def space(node: Node, compressing: None) -> Iterator[str]:
    space_id = echo_space(node, "squeeze")
    yield space_id
    hf(node).delete_repo(space_id, repo_type="space", missing_ok=True)


def app_memory(container_id: str) -> int:
    """The container's memory as `docker stats` shows it (usage less inactive file cache)."""
    stats = docker.from_env().api.stats(container_id, stream=False, one_shot=True)
    mem = stats["memory_stats"]
    stats = mem.get("stats", {})
    return int(mem["usage"] - stats.get("total_inactive_file", stats.get("inactive_file", 0)))


def load_ballast(node: Node, space_id: str) -> None:
    r = node.app_get(space_id, f"/ballast/{BALLAST_MIB}")
    assert r.status_code == 200 and int(r.text) >= BALLAST_MIB, r.text


def test_idle_app_is_compressed_and_still_answers(node: Node, space: str) -> None:
    app = settled(node, space)
    load_ballast(node, space)
    before = app_memory(app.id)
    assert before > BALLAST_MIB * MiB

    rt = wait_for(lambda: "compressed" in (r := node.runtime(space)) and r, 60, every=0.5)
    assert rt["stage"] == "RUNNING"  # it still runs, and says its idle memory is compressed
    assert rt["compressed"]["movedBytes"] > BALLAST_MIB * MiB // 2
    after = app_memory(app.id)
    assert after < before - BALLAST_MIB * MiB // 2, (before / MiB, after / MiB)

    r = node.app_get(space)  # the same container answers, faulting back what it touches
    assert r.status_code == 200 and r.text == f"echo {app.id[:12]}"
    app.reload()
    assert app.status == "running" and not app.attrs["State"]["Paused"]
    assert [c.id for c in containers(space)] == [app.id]
    # The request starts a new idle spell: no longer said to be compressed (until it is again).
    wait_for(lambda: "compressed" not in node.runtime(space), 30, every=0.3)


def test_visitors_are_served_while_compressing(node: Node, space: str) -> None:
    from spaceport.db.models import Space
    from spaceport.db.session import session_scope
    from spaceport.lifecycle import compressor

    app = settled(node, space)
    load_ballast(node, space)
    owner, name = space.split("/")
    with session_scope() as session:
        pk = session.query(Space.id).filter_by(owner=owner, name=name).scalar()
    codes: list[int] = []
    stop = threading.Event()

    def visit() -> None:
        while not stop.is_set():
            r = node.app_get(space)
            codes.append(r.status_code if r.text == f"echo {app.id[:12]}" else -r.status_code)

    visitor = threading.Thread(target=visit)
    visitor.start()
    try:
        wait_for(lambda: len(codes) >= 3, 10)
        done = wait_for(lambda: compressor.compress(node.settings, pk, app.id), 30)
        seen = len(codes)
        wait_for(lambda: len(codes) >= seen + 3, 10)  # and after it
    finally:
        stop.set()
        visitor.join()
    assert done.moved_bytes > BALLAST_MIB * MiB // 2, done
    assert set(codes) == {200}, codes


def test_crash_while_compressed_is_a_crash(node: Node, space: str) -> None:
    app = settled(node, space)
    load_ballast(node, space)
    wait_for(lambda: "compressed" in node.runtime(space), 60, every=0.5)
    app.kill()  # a running container, compressed or not: the crash handling restarts it
    fresh = wait_for(lambda: (c := containers(space)) and c[0].id != app.id and c[0], 60)
    node.wait_stage(space, {"RUNNING"}, timeout=60)
    r = node.app_get(space)
    assert r.status_code == 200 and r.text == f"echo {fresh.id[:12]}"
    assert "compressed" not in node.runtime(space)  # the new container starts whole
