"""An app calls another Space as it would on Hugging Face (one demo chaining another with
gradio_client): through HF_ENDPOINT and the Space's host, both of which must resolve and be
reachable from inside its container. It reaches the node's public entry point as any visitor
does, and nothing else of the host (engine/network_policy.py).

Three Spaces run the probe app (`/call?space=` does what gradio_client does: the Space's info
from HF_ENDPOINT, then its host, with HF_TOKEN if set): `pub`, public, no token; `tok`, public,
with its owner's read token as the secret HF_TOKEN; `priv`, private.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest

from tests.conftest import Node, unique
from tests.hf.conftest import issue_token
from tests.safety.test_isolation import PROBE, probe

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def spaces(node: Node) -> dict[str, str]:
    made = {
        "pub": node.create_space(unique("call-pub"), sdk="docker"),
        "tok": node.create_space(unique("call-tok"), sdk="docker"),
        "priv": node.create_space(unique("call-priv"), sdk="docker", private=True),
    }
    with node.api() as c:
        secret = {"key": "HF_TOKEN", "value": issue_token("admin", "read")}
        r = c.post(f"/api/spaces/{made['tok']}/secrets", json=secret)
        assert r.status_code == 200, r.text
    for space in made.values():
        push = node.push(PROBE, space)
        assert push.returncode == 0, push.stderr
    for space in made.values():
        node.wait_stage(space, {"RUNNING"})
    return made


def call(node: Node, caller: str, callee: str, host: str = "") -> dict[str, Any]:
    query = f"/call?space={quote(callee)}" + (f"&host={quote(host)}" if host else "")
    return probe(node, caller, query)


def test_an_app_calls_a_public_space(node: Node, spaces: dict[str, str]) -> None:
    seen = call(node, spaces["pub"], spaces["tok"])
    assert seen["info"]["status"] == 200, seen
    assert seen["host"] == node.app_url(spaces["tok"]).rstrip("/"), seen
    assert seen["app"] == {"status": 200, "body": f'{{"space_id": "{spaces["tok"]}"}}'}, seen


def test_an_app_calls_a_private_space_with_its_own_token(
    node: Node, spaces: dict[str, str]
) -> None:
    seen = call(node, spaces["tok"], spaces["priv"])
    assert seen["info"]["status"] == 200, seen
    assert seen["app"] == {"status": 200, "body": f'{{"space_id": "{spaces["priv"]}"}}'}, seen


def test_a_private_space_refuses_an_app_without_a_token(node: Node, spaces: dict[str, str]) -> None:
    """Without a token a private Space is not found, neither its info nor its host."""
    host = node.app_url(spaces["priv"]).rstrip("/")
    seen = call(node, spaces["pub"], spaces["priv"], host=host)
    assert seen["info"]["status"] == 404, seen
    assert seen["app"]["status"] == 404, seen
    assert spaces["priv"] not in seen["app"]["body"], seen


def test_only_the_entry_point_of_the_host_is_open(node: Node, spaces: dict[str, str]) -> None:
    """The public port answers apps on the host's address; the API's own port, Redis and
    PostgreSQL stay closed (and tests/safety/test_isolation.py checks the rest)."""
    port = node.settings.listen.rsplit(":", 1)[-1]
    targets = [f"GATEWAY:{port}", f"GATEWAY:{node.settings.api_port}", "GATEWAY:6379"]
    seen = probe(node, spaces["pub"], "/probe?targets=" + ",".join(targets))
    gateway = seen["gateway"]
    assert seen["reach"] == {
        f"{gateway}:{port}": True,
        f"{gateway}:{node.settings.api_port}": False,
        f"{gateway}:6379": False,
    }, seen["reach"]
