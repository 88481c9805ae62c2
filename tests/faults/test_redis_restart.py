"""Redis restarted (empty: `make up` runs it without persistence) loses nothing that matters.

Redis holds the build queue, build leases and live log streams. While it is down the running
apps keep serving and a push is still accepted; once it is back, the build that push queued
runs (the reconciler sends again what the queue lost) and the new version serves.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Iterator

import pytest
import redis as redis_lib

from tests.conftest import Node, may_restart, need
from tests.runtime.helpers import ECHO, app_text, containers, hf, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.redis_restart, may_restart("redis_restart")]

LABEL_COMMIT = "org.spaceport.commit"


def redis_client(node: Node) -> redis_lib.Redis:
    url = node.settings.redis_url.rsplit("/", 1)[0] + "/0"
    return redis_lib.Redis.from_url(url, socket_timeout=5)


@pytest.fixture
def stopped_redis(node: Node, running_space: str) -> Iterator[list[str]]:
    """Stop the machine's redis-server without saving; yields the argv that starts it again
    the way it was configured; the test starts it (and this fixture does, if it did not)."""
    need(shutil.which("redis-server") is not None, "redis-server")
    client = redis_client(node)
    conf = {k: client.config_get(k)[k] for k in ("port", "bind", "save", "dir", "appendonly")}
    argv = ["redis-server", "--daemonize", "yes"]
    for key, value in conf.items():
        argv += [f"--{key}", *(value.split() if key == "bind" else [value])]
    with contextlib.suppress(redis_lib.ConnectionError):  # it closes the connection as it goes
        client.shutdown(nosave=True)
    wait_for(lambda: not _answers(client), 20)
    yield argv
    if not _answers(client):
        start_redis(argv, client)


def _answers(client: redis_lib.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis_lib.RedisError:
        return False


def start_redis(argv: list[str], client: redis_lib.Redis) -> None:
    subprocess.run(argv, check=True, capture_output=True)
    wait_for(lambda: _answers(client), 20)


def test_push_while_redis_is_down_is_built_once_it_is_back(
    node: Node, running_space: str, stopped_redis: list[str]
) -> None:
    space_id = running_space
    before = containers(space_id)[0].labels[LABEL_COMMIT]

    # Down: the app keeps serving, and a push is accepted (git is not behind Redis).
    assert app_text(node, space_id)[0] == 200
    push = node.push(ECHO, space_id, message="pushed while Redis was down")
    assert push.returncode == 0, push.stderr
    head = hf(node).space_info(space_id).sha
    assert head and head != before
    assert node.runtime(space_id)["stage"] in ("RUNNING_BUILDING", "RUNNING")
    assert app_text(node, space_id)[0] == 200

    # Back, empty: the lost build task is sent again, built, and the new commit serves.
    start_redis(stopped_redis, redis_client(node))
    wait_for(lambda: any(c.labels.get(LABEL_COMMIT) == head for c in containers(space_id)), 240, 1)
    node.wait_stage(space_id, {"RUNNING"}, timeout=60)
    assert app_text(node, space_id)[0] == 200
