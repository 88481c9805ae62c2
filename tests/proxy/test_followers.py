"""A second proxy in front of the same Spaces (`spaceport proxy --follow`, as on another
machine): with a data dir of its own and no database, it serves every Space the node's proxy
serves, follows a change of the route table within seconds, and its visitors keep a Space
awake like the node's own proxy's."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from huggingface_hub import HfApi
from sqlalchemy import select

from tests.conftest import Node, follower_proxy
from tests.proxy.conftest import Fleet
from tests.runtime.helpers import wait_for

pytestmark = pytest.mark.slow


@dataclass
class Follower:
    port: int
    log: Path

    def get(self, node: Node, space_id: str, path: str = "/") -> httpx.Response:
        host = node.app_host(space_id).split(":")[0]
        return httpx.get(
            f"http://127.0.0.1:{self.port}{path}",
            headers={"Host": f"{host}:{self.port}"},
            timeout=10,
        )


@pytest.fixture(scope="module")
def follower(node: Node, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Follower]:
    data = tmp_path_factory.mktemp("follower")
    with follower_proxy(dict(os.environ), data) as port:
        yield Follower(port, data / "follower.log")


def _same_app(node: Node, follower: Follower, space_id: str) -> bool:
    try:
        theirs = follower.get(node, space_id, "/headers")
    except httpx.HTTPError:
        return False
    ours = node.app_get(space_id, "/headers")
    if not theirs.status_code == ours.status_code == 200:
        return False
    host = node.app_host(space_id).split(":")[0]  # the app saw the visitor's Host, both ways
    return bool(theirs.json()["host"] == f"{host}:{follower.port}" and ours.json()["host"])


def test_a_follower_serves_the_nodes_spaces_and_follows_changes(
    node: Node, fleet: Fleet, follower: Follower
) -> None:
    space_id = fleet.protocol
    wait_for(lambda: _same_app(node, follower, space_id), 60, every=0.5)
    # A change of the table (the Space made private) reaches the follower within seconds:
    # strangers get the control plane's 404 there too, then the app again once public.
    api = HfApi(endpoint=node.url, token=node.token)
    api.update_repo_settings(space_id, repo_type="space", private=True)
    try:
        wait_for(lambda: follower.get(node, space_id).status_code == 404, 15, every=0.2)
        assert node.app_get(space_id).status_code == 404
    finally:
        api.update_repo_settings(space_id, repo_type="space", private=False)
    wait_for(lambda: _same_app(node, follower, space_id), 15, every=0.2)
    # A host no Space has gets the control plane's own answer through the follower too.
    stranger = follower.get(node, "nobody/nothing-here")
    assert stranger.status_code == node.app_get("nobody/nothing-here").status_code == 404


def test_a_followers_visitors_keep_the_space_awake(
    node: Node, fleet: Fleet, follower: Follower
) -> None:
    from spaceport.db.models import Space
    from spaceport.db.session import session_scope

    space_id = fleet.protocol
    owner, name = space_id.split("/")
    wait_for(lambda: _same_app(node, follower, space_id), 60, every=0.5)

    def last_request() -> float:
        with session_scope() as session:
            stamp = session.scalar(
                select(Space.last_request_at).where(Space.owner == owner, Space.name == name)
            )
        return stamp.timestamp() if stamp else 0.0

    time.sleep(6)  # the node's reconciler has counted every visit made so far
    before = last_request()
    time.sleep(5)
    assert last_request() == before  # nothing else visits it meanwhile
    assert follower.get(node, space_id, "/headers").status_code == 200  # through it alone
    wait_for(lambda: last_request() > before, 20, every=0.5)


def test_a_followers_visitors_count_in_the_metrics(
    node: Node, fleet: Fleet, follower: Follower
) -> None:
    """Its counters reach `GET /api/v1/metrics` as series of their own (label `proxy`), which
    grow with the visits made through it and not with the node proxy's."""
    from spaceport.proxy.traffic import parse_samples

    space_id = fleet.protocol
    wait_for(lambda: _same_app(node, follower, space_id), 60, every=0.5)

    def through_follower() -> float | None:
        with node.api() as c:
            text = c.get("/api/v1/metrics").text
        found = [
            value
            for name, labels, value in parse_samples(text)
            if name == "spaceport_space_requests_total"
            and labels.get("space") == space_id
            and "proxy" in labels
        ]
        return sum(found) if found else None

    def settled() -> float | None:
        """Its count once two of its reports (every 2 s) say the same."""
        first = through_follower()
        time.sleep(4.5)
        return first if first is not None and through_follower() == first else None

    before = wait_for(settled, 30, every=0)  # every visit so far reported
    for _ in range(3):
        assert follower.get(node, space_id, "/headers").status_code == 200
    wait_for(lambda: (through_follower() or 0) >= before + 3, 20, every=0.5)
    grown = wait_for(settled, 30, every=0)
    assert grown == before + 3
    for _ in range(3):  # the node's own proxy: its series, not the follower's
        assert node.app_get(space_id, "/headers").status_code == 200
    time.sleep(5)  # two of the follower's reports
    assert through_follower() == grown


def test_followers_sharing_a_hostname_and_address_report_apart(tmp_path: Path) -> None:
    """Two containers of one image (same hostname, same listen address) each get counters of
    their own in Redis; one restarted keeps its name, so its series go on."""
    from spaceport.proxy.follower import follower_id
    from spaceport.settings import Settings

    one, two = (Settings(data=tmp_path / d, listen=":80") for d in ("one", "two"))
    assert follower_id(one) != follower_id(two)
    assert follower_id(one) == follower_id(one.model_copy())
    assert follower_id(one).startswith(f"{socket.gethostname()}::80:")
