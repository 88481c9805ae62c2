"""Builder pieces on their own: progress parsing, build limits, the per-Space lease, and the
watchdog that stops a silent build (that one on the real Docker engine)."""

from __future__ import annotations

import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest

from spaceport.queue.lease import BuildLease, heartbeat
from spaceport.settings import Settings
from spaceport_builder.build_limits import apply_build_limits, planned_limits
from spaceport_builder.image_build import (
    BuildCancelled,
    BuildFailed,
    BuildRequest,
    _Progress,
    run_build,
)
from tests.conftest import docker_available, need, redis_available

FAILED_BUILD = """\
#4 [deps 1/3] FROM docker.io/spaceport/python:3.11
#4 DONE 0.0s
#5 [deps 2/3] WORKDIR /home/user/app
#5 CACHED
#6 [deps 3/3] RUN uv pip install "gradio" -r /tmp/requirements.txt
#6 0.424 Using Python 3.11.2 environment at: /opt/venv
#6 0.570 error: No solution found when resolving dependencies
#6 0.570   cause: this-package-does-not-exist was not found in the package registry
#6 ERROR: executor failed running [/bin/sh -c uv pip install "gradio"]: exit code: 1
------
executor failed running [/bin/sh -c uv pip install "gradio"]: exit code: 1
"""


def test_progress_names_the_failing_step_and_keeps_its_output() -> None:
    progress = _Progress()
    for line in FAILED_BUILD.splitlines():
        progress.feed(line)
    failure = progress.failure(1)
    assert failure.step == 'RUN uv pip install "gradio" -r /tmp/requirements.txt'
    assert "exit code: 1" in str(failure)
    assert failure.output[-1].endswith("was not found in the package registry")
    report = progress.report.as_dict()
    assert report["cached"] == ["WORKDIR /home/user/app"]
    assert report["dependencies_cached"] is False


@pytest.mark.parametrize("v2", [False, True])
def test_build_limits_cap_buildkit_cgroup(tmp_path: Path, v2: bool) -> None:
    settings = Settings(data=tmp_path / "d", build_memory="3g")
    if v2:
        (tmp_path / "cgroup.controllers").write_text("cpu memory pids\n")
    for limit in planned_limits(settings, tmp_path):
        limit.path.parent.mkdir(parents=True, exist_ok=True)
        limit.path.write_text("max\n")
    applied = apply_build_limits(settings, print, tmp_path)
    values = {lim.path.name: lim.path.read_text() for lim in applied}
    memory = "memory.max" if v2 else "memory.limit_in_bytes"
    assert values[memory] == str(3 * 1024**3)
    assert values["pids.max"] == "4096"


def test_lease_lets_one_build_per_space_run(tmp_path: Path) -> None:
    need(redis_available(), "redis-server on 127.0.0.1:6379")
    import redis

    client = redis.Redis.from_url("redis://127.0.0.1:6379/6")
    space = int(uuid.uuid4().int % 10**9)
    first = BuildLease(client, space, 1, ttl_s=5)
    assert first.acquire(lambda: False, print)
    assert heartbeat(client, 1) is not None
    second = BuildLease(client, space, 2, ttl_s=5)
    assert not second.acquire(lambda: True, print)  # superseded while waiting: gives up
    got: list[float] = []
    waiter = threading.Thread(
        target=lambda: got.append(second.acquire(lambda: False, print) and time.monotonic())
    )
    waiter.start()
    time.sleep(0.5)
    released = time.monotonic()
    first.release()
    waiter.join(5)
    assert got and got[0] >= released  # the second started only after the first let go
    assert heartbeat(client, 1) is None
    second.release()


@pytest.mark.slow
def test_watchdog_stops_a_silent_build_on_timeout_and_cancel(tmp_path: Path) -> None:
    need(docker_available(), "a Docker engine (dockerd)")
    marker = f"{uuid.uuid4().int % 1000}.{uuid.uuid4().int % 1000}"
    (tmp_path / "Dockerfile").write_text(f"FROM spaceport/python:3.11\nRUN sleep {marker}\n")
    settings = Settings(data=tmp_path / "d")
    req = BuildRequest(
        tmp_path, tmp_path / "Dockerfile", "spaceport-test/watchdog:1", no_cache=True
    )
    started = time.monotonic()
    with pytest.raises(BuildFailed, match=r"longer than its time limit \(2 s\)"):
        run_build(settings, req, lambda _: None, timeout_s=2)
    assert time.monotonic() - started < 8
    cancel_at = time.monotonic() + 2
    with pytest.raises(BuildCancelled):
        run_build(settings, req, lambda _: None, cancelled=lambda: time.monotonic() > cancel_at)
    # BuildKit stopped the step's container when its client went away.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
        if f"sleep {marker}" not in ps:
            break
        time.sleep(0.2)
    assert f"sleep {marker}" not in ps


def test_secret_steps_are_cached_per_space_and_secret_value(tmp_path: Path) -> None:
    from spaceport_builder.build_secrets import isolate_secret_steps, secrets_digest

    dockerfile = (
        "FROM spaceport/python:3.11\n"
        "RUN uv pip install fastapi\n"
        "RUN --mount=type=secret,id=TOKEN,mode=0444 \\\n"
        "    cat /run/secrets/TOKEN | wc -c > n\n"
        "COPY . .\n"
    )
    assert isolate_secret_steps(dockerfile).splitlines() == [
        "FROM spaceport/python:3.11",
        "RUN uv pip install fastapi",
        "ARG SPACEPORT_SECRETS_DIGEST",
        "RUN --mount=type=secret,id=TOKEN,mode=0444 \\",
        "    cat /run/secrets/TOKEN | wc -c > n",
        "COPY . .",
    ]
    settings = Settings(data=tmp_path / "d", secret_key="node-key")
    digest = secrets_digest(settings, 1, {"TOKEN": "a"})
    assert digest != secrets_digest(settings, 1, {"TOKEN": "b"})  # a new value rebuilds
    assert digest != secrets_digest(settings, 2, {"TOKEN": "a"})  # never shared by Spaces
