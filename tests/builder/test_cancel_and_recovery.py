"""A new push cancels the running build (its step containers and temp files go with it) and
one Space never has two builds running; a worker killed mid-build leaves no build stuck."""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.builder.helpers import (
    LogReader,
    builds,
    clean_later,
    head_sha,
    processes,
    variant,
    wait_builds,
    wait_deployed,
    wait_gone,
)
from tests.conftest import Node, unique

pytestmark = pytest.mark.slow

SERVER = 'CMD ["python", "-m", "http.server", "7860"]\n'


def slow_dockerfile(marker: str, until: float | None = None) -> str:
    """A Docker Space whose build has a long, silent step (`sleep {marker}`).

    With `until`, the step sleeps only when it starts before that time (a retry is quick).
    """
    step = f"sleep {marker}"
    if until is not None:
        step = f"if [ $(date +%s) -lt {int(until)} ]; then sleep {marker}; fi"
    # The step prints `step-2-started` once running (its header shows `step-$((1+1))-started`).
    return f"FROM spaceport/python:3.11\nRUN echo step-$((1+1))-started && {step}\n{SERVER}"


def marker() -> str:
    return f"{30 + uuid.uuid4().int % 60}.{uuid.uuid4().int % 10**6}"


@pytest.fixture(scope="module")
def space_ids() -> Iterator[list[str]]:
    ids: list[str] = []
    yield ids
    clean_later(ids)


def test_new_push_cancels_the_running_build(
    node: Node, tmp_path: Path, space_ids: list[str]
) -> None:
    space_id = node.create_space(unique("cancel"), sdk="docker")
    space_ids.append(space_id)
    sleep = marker()
    assert (
        node.push(
            variant(tmp_path, "docker-fastapi", Dockerfile=slow_dockerfile(sleep)), space_id
        ).returncode
        == 0
    )
    reader = LogReader(node, space_id).start()
    reader.wait_for("step-2-started")
    assert f"sleep {sleep}" in processes()  # the build step runs

    quick = f"FROM spaceport/python:3.11\nRUN echo quick-{uuid.uuid4().hex}\n{SERVER}"
    assert (
        node.push(variant(tmp_path, "docker-fastapi", Dockerfile=quick), space_id).returncode == 0
    )
    sha2 = head_sha(node, space_id)
    assert reader.done.wait(30), "the cancelled build's log never ended"
    assert reader.lines()[-1] == "build cancelled: a newer commit was pushed"
    assert wait_gone(f"sleep {sleep}"), "the cancelled build's step is still running"

    assert wait_deployed(node, space_id).commit_sha == sha2
    first, second = wait_builds(space_id, 2)
    assert first.status == "cancelled" and second.status == "succeeded"
    assert "superseded by a newer commit" in (first.error_message or "")
    assert second.started_at >= first.finished_at  # never two builds of one Space at once
    assert not list((node.settings.run_dir / "builds").glob(f"{first.id}-*"))  # files removed
    assert node.app_get(space_id, "/").status_code == 200


def test_killed_worker_build_is_built_again(
    node: Node, tmp_path: Path, space_ids: list[str]
) -> None:
    """SIGKILL the worker process running a build: Celery's late ack gives the task back, and
    it runs again once the dead worker's lease expires; the build step dies with the worker."""
    import redis

    from spaceport.queue.lease import heartbeat

    space_id = node.create_space(unique("killed"), sdk="docker")
    space_ids.append(space_id)
    sleep = marker()
    dockerfile = slow_dockerfile(sleep, until=time.time() + 12)
    assert (
        node.push(variant(tmp_path, "docker-fastapi", Dockerfile=dockerfile), space_id).returncode
        == 0
    )
    reader = LogReader(node, space_id).start()
    reader.wait_for("step-2-started")
    [build] = builds(space_id)
    client = redis.Redis.from_url(node.settings.redis_url)
    beat = heartbeat(client, build.id)
    assert beat is not None
    os.kill(int(str(beat["pid"])), signal.SIGKILL)
    assert wait_gone(f"sleep {sleep}"), "the killed worker's build step is still running"

    build = wait_deployed(node, space_id)
    assert int(client.get(f"spaceport:build:{build.id}:attempts") or 0) >= 2


def test_reconciler_requeues_or_fails_builds_without_a_worker(
    node: Node, tmp_path: Path, space_ids: list[str]
) -> None:
    """A build left `running` with no heartbeat (its worker vanished, its task lost): the
    reconciler builds it again; once it ran out of attempts it is failed with a reason."""
    import redis

    from spaceport.queue.recovery import MAX_ATTEMPTS, attempts_key

    client = redis.Redis.from_url(node.settings.redis_url)
    requeued = node.create_space(unique("lost"), sdk="static")
    given_up = node.create_space(unique("lost"), sdk="static")
    space_ids += [requeued, given_up]
    for space_id in (requeued, given_up):
        assert node.push(variant(tmp_path, "static-site"), space_id).returncode == 0
        node.wait_stage(space_id, {"RUNNING"}, sha=head_sha(node, space_id), timeout=120)
    _pretend_lost(requeued)
    [lost] = builds(given_up)
    client.set(attempts_key(lost.id), MAX_ATTEMPTS)
    _pretend_lost(given_up)

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        statuses = (builds(requeued)[0].status, builds(given_up)[0].status)
        if statuses == ("succeeded", "failed"):
            break
        time.sleep(0.3)
    assert statuses == ("succeeded", "failed")
    assert int(client.get(attempts_key(builds(requeued)[0].id)) or 0) == 2  # built again
    failed = builds(given_up)[0]
    assert "The build worker stopped during the build 2 times" in (failed.error_message or "")
    rt = node.runtime(given_up)
    assert rt["stage"] == "RUNNING"  # the version that was serving keeps serving
    assert "The build worker stopped" in rt["errorMessage"]


def _pretend_lost(space_id: str) -> None:
    """Put the Space's build back to `running`, started a minute ago, with no worker."""
    from datetime import timedelta

    from sqlalchemy import update

    from spaceport.db.models import Build, utcnow
    from spaceport.db.session import session_scope

    [build] = builds(space_id)
    with session_scope() as session:
        session.execute(
            update(Build)
            .where(Build.id == build.id)
            .values(status="running", started_at=utcnow() - timedelta(seconds=60), finished_at=None)
        )
