"""Operating a Space with huggingface_hub: hardware, sleep time, secrets, variables, pause,
restart. (The runtime's own tests check what these do to containers; here: the client works.)
"""

from __future__ import annotations

import pytest
from huggingface_hub import HfApi
from huggingface_hub.errors import HfHubHTTPError

from tests.conftest import Node, unique
from tests.hf.conftest import User, make_static_space, wait_running


@pytest.fixture(scope="module")
def ops_space(api: HfApi) -> str:
    repo_id = make_static_space(api, unique("ops"))
    wait_running(api, repo_id)  # restart needs a built version
    return repo_id


def test_hardware_and_sleep_time(api: HfApi, ops_space: str) -> None:
    runtime = api.request_space_hardware(ops_space, "cpu-upgrade")  # type: ignore[arg-type]
    assert runtime.requested_hardware == "cpu-upgrade"
    assert api.get_space_runtime(ops_space).requested_hardware == "cpu-upgrade"
    with pytest.raises(HfHubHTTPError, match="unknown hardware"):
        api.request_space_hardware(ops_space, "tpu-v9")  # type: ignore[arg-type]

    runtime = api.set_space_sleep_time(ops_space, 3600)
    assert runtime.sleep_time == 3600
    assert api.get_space_runtime(ops_space).sleep_time == 3600


def test_secrets_and_variables(api: HfApi, ops_space: str) -> None:
    api.add_space_secret(ops_space, "API_KEY", "s3cret", description="for the model API")
    secrets = api.get_space_secrets(ops_space)
    assert secrets["API_KEY"].description == "for the model API"
    assert not hasattr(secrets["API_KEY"], "value")  # values never come back
    api.delete_space_secret(ops_space, "API_KEY")
    assert "API_KEY" not in api.get_space_secrets(ops_space)

    after_add = api.add_space_variable(ops_space, "MODEL", "tiny", description="which model")
    assert after_add["MODEL"].value == "tiny"
    got = api.get_space_variables(ops_space)
    assert got["MODEL"].value == "tiny" and got["MODEL"].description == "which model"
    assert got["MODEL"].updated_at is not None
    after_delete = api.delete_space_variable(ops_space, "MODEL")
    assert "MODEL" not in after_delete and "MODEL" not in api.get_space_variables(ops_space)
    with pytest.raises(HfHubHTTPError, match="invalid key"):
        api.add_space_variable(ops_space, "1-BAD", "x")


def test_pause_and_restart(api: HfApi, ops_space: str) -> None:
    assert api.pause_space(ops_space).stage == "PAUSED"
    assert api.get_space_runtime(ops_space).stage == "PAUSED"
    assert api.restart_space(ops_space).stage != "PAUSED"
    assert api.restart_space(ops_space, factory_reboot=True).stage != "PAUSED"


def test_only_the_owner_with_a_write_token_operates(
    node: Node, ops_space: str, other_user: User, read_token: str
) -> None:
    for token, why in ((other_user.token, "not allowed to change"), (read_token, "write token")):
        client = HfApi(endpoint=node.url, token=token)
        with pytest.raises(HfHubHTTPError) as err:
            client.pause_space(ops_space)
        assert err.value.response.status_code == 403 and why in str(err.value)
        with pytest.raises(HfHubHTTPError) as err:
            client.add_space_secret(ops_space, "X", "y")
        assert err.value.response.status_code == 403


def test_operations_are_in_the_space_log(api: HfApi, node: Node, ops_space: str) -> None:
    """Sleep, stop, start and restart each leave an entry in the Space's audit log. (A wake is
    recorded only when it woke the Space: a build in flight may have woken it first.)"""
    wait_running(api, ops_space)
    base = f"/api/v1/spaces/{ops_space}"
    with node.api() as c:
        for action in ("sleep", "stop", "start", "restart"):
            r = c.post(f"{base}/{action}")
            assert r.status_code == 200, f"{action}: {r.status_code} {r.text}"
        entries = c.get(f"{base}/audit", params={"limit": 4}).json()
    assert [e["action"] for e in entries] == [
        "space.restart",
        "space.start",
        "space.stop",
        "space.sleep",
    ]
    assert all(e["actor"] == "admin" and e["ip"] == "127.0.0.1" for e in entries), entries
    assert entries[-1]["details"] == {"deep": False}
