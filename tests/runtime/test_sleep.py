"""Sleep and wake on real containers: an idle Space is frozen (light sleep), then stopped (full
sleep). A visitor's first request wakes it: a frozen app answers it after a short pause, a
stopped one shows the status page while a new container starts."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import Node
from tests.runtime.helpers import containers, echo_space, hf, settled, wait_for

pytestmark = [
    pytest.mark.slow,
    # huggingface_hub warns about Hugging Face's own cpu-basic sleep policy: not ours.
    pytest.mark.filterwarnings("ignore:If your Space runs on the default:UserWarning"),
]


@pytest.fixture(scope="module")
def sleepy(node: Node) -> Iterator[str]:
    space_id = echo_space(node, "sleepy")
    yield space_id
    hf(node).delete_repo(space_id, repo_type="space", missing_ok=True)


def visit_until_served(node: Node, space_id: str, timeout: float) -> tuple[float, list[int]]:
    """A visitor's requests from the first (which wakes the Space) until the app answers."""
    codes: list[int] = []
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        try:
            r = node.app_get(space_id, headers={"Accept": "application/json"})
        except httpx.HTTPError:  # a proxy reload may drop a request: the page polls again
            codes.append(0)
            continue
        codes.append(r.status_code)
        if r.status_code == 200 and r.text.startswith("echo "):
            return time.monotonic() - start, codes
        time.sleep(0.02)
    raise AssertionError(f"{space_id} not served within {timeout} s: {codes[-5:]}")


def test_idle_space_freezes_then_a_visitor_thaws_it(node: Node, sleepy: str) -> None:
    frozen = settled(node, sleepy)
    rt = hf(node).set_space_sleep_time(sleepy, 8)  # frozen after 4 s idle, stopped after 8 s
    assert rt.sleep_time == 8

    started = time.monotonic()
    node.wait_stage(sleepy, {"SLEEPING"}, timeout=20)
    assert time.monotonic() - started > 2  # not before it has been idle for a while

    def is_paused() -> bool:
        frozen.reload()
        return bool(frozen.attrs["State"]["Paused"])

    wait_for(is_paused, 10)  # memory kept, no CPU

    # The frozen app keeps its route: the visitor's first request is held by the kernel,
    # the runtime sees it waiting and thaws the container; it is simply answered.
    elapsed, codes = visit_until_served(node, sleepy, timeout=10)
    assert codes == [200], codes
    assert elapsed < 1.0, f"light-sleep wake took {elapsed:.2f} s"
    assert [c.id for c in containers(sleepy)] == [frozen.id]  # thawed, not replaced
    assert node.runtime(sleepy)["stage"] == "RUNNING"


def test_long_idle_space_stops_then_a_visitor_starts_it(node: Node, sleepy: str) -> None:
    before = settled(node, sleepy).id
    hf(node).set_space_sleep_time(sleepy, 8)  # as the test above leaves it: it runs alone too
    node.wait_stage(sleepy, {"SLEEPING"}, timeout=20)
    wait_for(lambda: containers(sleepy) == [], 30)  # full sleep: nothing runs
    [kept] = containers(sleepy, all=True)  # stopped, kept: its first start's bytecode stays
    assert kept.id == before and kept.status == "exited"
    rt = node.runtime(sleepy)
    assert rt["stage"] == "SLEEPING" and rt["gcTimeout"] == 8

    elapsed, codes = visit_until_served(node, sleepy, timeout=30)
    # The first request woke it and was held while it started, then sent on to the app (a
    # redirect to the same URL): the visitor never saw the status page.
    assert codes == [307, 200], codes
    assert elapsed < 10, f"full-sleep wake took {elapsed:.2f} s"
    assert settled(node, sleepy).id == before  # started again, not rebuilt or recreated

    hf(node).set_space_sleep_time(sleepy, -1)  # never again


def test_default_sleep_time_puts_to_sleep_only_spaces_without_their_own(node: Node) -> None:
    """SPACEPORT_DEFAULT_SLEEP_S, as the reconciler's sleep step applies it (called here with
    the node's settings and that one value changed): a Space that set no sleep time
    deep-sleeps once idle for the default, not before; one with its own keeps its own; 0 (the
    test node's, and the shipped default) puts nobody to sleep."""
    from spaceport.engine import make_backend
    from spaceport.lifecycle.sleeper import check_sleep

    plain, own = echo_space(node, "dfltsleep"), echo_space(node, "ownsleep")
    try:
        hf(node).set_space_sleep_time(own, 3600)
        backend = make_backend(node.settings)

        def sweep(default_s: int) -> dict[str, str]:
            settings = node.settings.model_copy(
                update={"default_sleep_s": default_s, "light_sleep_s": 0}
            )
            check_sleep(settings, backend)
            return {s: node.runtime(s)["stage"] for s in (plain, own)}

        time.sleep(3)  # both idle for longer than the default below
        assert sweep(0) == {plain: "RUNNING", own: "RUNNING"}
        assert sweep(600) == {plain: "RUNNING", own: "RUNNING"}  # not idle that long
        assert sweep(2) == {plain: "SLEEPING", own: "RUNNING"}
        wait_for(lambda: containers(plain) == [], 30)  # deep sleep: nothing of it runs
        assert len(containers(own)) == 1
        assert node.runtime(plain)["gcTimeout"] is None  # its own setting is still none
    finally:
        for space_id in (plain, own):
            hf(node).delete_repo(space_id, repo_type="space", missing_ok=True)


def test_a_queued_wake_is_not_taken_for_a_crash(node: Node) -> None:
    """A visitor's wake is claimed at once, then waits for one of the API's start threads (in
    a storm of wakes, tens of seconds). Meanwhile the Space wants to run and its container is
    the stopped one its deep sleep kept: the reconciler's crash check leaves it alone (it
    counted a crash and started the Space a second time). A queued start whose process died
    before running it is still found, and the Space started again."""
    from sqlalchemy import update

    from spaceport.db.models import Space
    from spaceport.db.session import session_scope
    from spaceport.engine import make_backend
    from spaceport.lifecycle import crashes, locks
    from tests.safety.test_disk_limits import space_pk

    space_id = echo_space(node, "queuedwake")
    try:
        with node.api() as api:
            r = api.post(f"/api/v1/spaces/{space_id}/sleep", params={"deep": True})
            assert r.status_code == 200, r.text
        node.wait_stage(space_id, {"SLEEPING"}, timeout=60)
        wait_for(lambda: containers(space_id) == [], 30)
        pk = space_pk(space_id)
        # As sleeper.wake leaves a Space when every start thread is busy: claimed, queued.
        locks.start_queued(node.settings, pk)
        with session_scope() as session:
            session.execute(
                update(Space).where(Space.id == pk).values(desired="running", stage="APP_STARTING")
            )
        backend = make_backend(node.settings)
        assert pk not in crashes.check_containers(node.settings, backend)
        assert node.runtime(space_id)["stage"] == "APP_STARTING"
        assert containers(space_id) == []  # nothing started it meanwhile

        locks.start_running(node.settings, pk)  # its process died before running it
        node.wait_stage(space_id, {"RUNNING"}, timeout=90)  # the reconciler starts it
        assert node.app_get(space_id).text.startswith("echo ")
    finally:
        hf(node).delete_repo(space_id, repo_type="space", missing_ok=True)
