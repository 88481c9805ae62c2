"""Wake standbys (lifecycle/wake_standby.py): a deep-sleeping Gradio Space wakes into a
container of its own that already imported Gradio, within the node's memory budget (the most
recently visited first), and that container never carries anything of another Space."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import httpx
import pytest

from tests.builder.helpers import clean_later, head_sha, variant, wait_deployed
from tests.conftest import Node, unique
from tests.runtime.helpers import containers, hf, node_env, serves_at_normal_weight, wait_for
from tests.runtime.test_standby import answer, deployments, serving

pytestmark = pytest.mark.slow

# What the app answers: its whole environment and the files of its directory.
APP = """import json
import os

import gradio as gr


def greet(name: str) -> str:
    return json.dumps({"env": dict(os.environ), "files": sorted(os.listdir("."))})


gr.Interface(fn=greet, inputs=gr.Textbox(label="Name"), outputs=gr.Textbox()).launch()
"""


@pytest.fixture
def room_for_one(node: Node) -> Iterator[None]:
    """The node's API (whose reconciler keeps wake standbys and whose jobs wake Spaces) with a
    budget that holds one wake standby."""
    from spaceport.lifecycle.wake_standby import STANDBY_MIB

    with node_env(node, {"SPACEPORT_WAKE_STANDBY_BUDGET_MIB": str(STANDBY_MIB)}, worker=False):
        yield


def last_request(space_id: str) -> Any:
    from sqlalchemy import select

    from spaceport.db.models import Space
    from spaceport.db.session import session_scope

    owner, name = space_id.split("/")
    with session_scope() as session:
        return session.scalar(
            select(Space.last_request_at).where(Space.owner == owner, Space.name == name)
        )


def standbys(space_id: str) -> list[dict[str, Any]]:
    return [d for d in deployments(space_id) if d["status"] == "standby"]


def waiting(space_id: str) -> str | None:
    """The Space's wake standby once its interpreter imported Gradio and waits."""
    rows = [d for d in standbys(space_id) if d["container"]]
    if not rows:
        return None
    try:
        logs = docker.from_env().containers.get(rows[-1]["container"]).logs().decode()
    except docker.errors.NotFound:
        return None
    return str(rows[-1]["container"]) if "waiting for the app" in logs else None


def deep_sleep(node: Node, space_id: str) -> None:
    with node.api() as api:
        r = api.post(f"/api/v1/spaces/{space_id}/sleep", params={"deep": True})
        assert r.status_code == 200, r.text
    wait_for(
        lambda: all(c.attrs["HostConfig"]["CpuShares"] == 64 for c in containers(space_id)), 60
    )


def visit(node: Node, space_id: str) -> None:
    """A visitor's requests, from the first (which wakes the Space) until the app answers."""

    def served() -> bool:
        try:
            r = node.app_get(space_id)
        except httpx.HTTPError:
            return False
        return r.status_code == 200 and "x-spaceport-status" not in r.headers

    wait_for(served, 120, every=0.1)


def test_a_deep_sleeping_space_wakes_into_its_own_standby(
    node: Node, room_for_one: None, tmp_path: Path
) -> None:
    mine, other = node.create_space(unique("wakemine")), node.create_space(unique("wakeother"))
    their_secret = f"theirs-{uuid.uuid4().hex}"
    try:
        hf(node).add_space_secret(other, "THEIR_TOKEN", their_secret)
        hf(node).add_space_secret(mine, "MY_TOKEN", "mine")
        for space_id, marker in ((other, "theirs.txt"), (mine, "mine.txt")):
            app = variant(tmp_path, "gradio-hello", **{"app.py": APP, marker: "x"})
            assert node.push(app, space_id).returncode == 0
            wait_deployed(node, space_id, timeout=300)
        # The other one was visited first, this one last: within a budget for one, this one
        # keeps a standby when both sleep.
        visit(node, other)
        wait_for(lambda: last_request(other) is not None, 30)
        visit(node, mine)
        wait_for(
            lambda: last_request(mine) is not None and last_request(mine) > last_request(other), 30
        )
        deep_sleep(node, other)
        deep_sleep(node, mine)
        standby = wait_for(lambda: waiting(mine), 240, every=0.5)
        for _ in range(30):  # three reconciler passes: the budget holds one
            assert standbys(other) == []
            time.sleep(0.2)
        assert docker.from_env().api.inspect_container(standby)["HostConfig"]["CpuShares"] == 64

        # The visitor's wake takes it: the app answers from the standby's container, with
        # its own environment and files, none of the other Space's.
        visit(node, mine)
        assert serving(mine)["container"] == standby
        seen = json.loads(json.loads(answer(node, mine))[0])
        assert seen["env"]["MY_TOKEN"] == "mine"
        assert seen["env"]["SPACE_COMMIT_SHA"] == head_sha(node, mine)
        assert "THEIR_TOKEN" not in seen["env"]
        assert their_secret not in json.dumps(seen)
        assert "mine.txt" in seen["files"] and "theirs.txt" not in seen["files"]
        assert [c.id for c in containers(mine, all=True)] == [standby]  # the stopped one went
        wait_for(lambda: serves_at_normal_weight(standby), 10)

        # Refill: the budget now goes to the other sleeping Space. Once this one sleeps again
        # (visited last), the other's standby makes room for this one's.
        wait_for(lambda: waiting(other), 240, every=0.5)
        assert standbys(mine) == []
        deep_sleep(node, mine)
        wait_for(lambda: waiting(mine), 240, every=0.5)
        wait_for(lambda: standbys(other) == [], 30)
    finally:
        for space_id in (mine, other):
            hf(node).delete_repo(space_id, repo_type="space", missing_ok=True)
        clean_later([mine, other])
