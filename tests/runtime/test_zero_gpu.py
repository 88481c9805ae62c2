"""Shared GPUs (zero-a10g), on this machine's FAKE GPU inventory (tests/runtime/fake_gpus.py:
the pool is one fake device node, 1:7; no CUDA runs here). What is real: the broker process,
its Unix socket, the app containers, the device node appearing and disappearing inside them,
the processes killed, the queue, the quota in Redis. The real-GPU run is docs/gpu.md's.

The app (apps/zero) is written for Hugging Face's ZeroGPU and runs unchanged.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Node, need, unique
from tests.runtime.fake_gpus import SHARED_UUID
from tests.runtime.helpers import hf

pytestmark = pytest.mark.slow
ZERO = Path(__file__).parent / "apps" / "zero"


def zero_space(node: Node, prefix: str) -> str:
    space_id = node.create_space(unique(prefix), sdk="docker", hardware="zero-a10g")
    push = node.push(ZERO, space_id)
    assert push.returncode == 0, push.stderr
    node.wait_stage(space_id, {"RUNNING"}, timeout=180)
    return space_id


@pytest.fixture(scope="module")
def pair(node: Node) -> Iterator[tuple[str, str]]:
    need(SHARED_UUID in node.settings.zero_gpu_pool, "the fake GPU inventory (needs root)")
    made = (zero_space(node, "zero-a"), zero_space(node, "zero-b"))
    yield made
    for space_id in made:
        hf(node).delete_repo(space_id, repo_type="space")


def get(node: Node, space_id: str, path: str, timeout: float = 60) -> tuple[int, Any]:
    r = node.app_get(space_id, path, timeout=timeout)
    return r.status_code, r.json()


def test_an_app_written_for_zerogpu_runs_unchanged(node: Node, pair: tuple[str, str]) -> None:
    a, _ = pair
    code, env = get(node, a, "/env")
    assert code == 200 and env["SPACES_ZERO_GPU"] == "true" and env["zero_gpu"] is True
    assert env["spaces_file"].startswith("/opt/spaceport/zerogpu/"), env  # ours, mounted
    code, out = get(node, a, "/work?ms=50&d=3")
    assert code == 200, out
    assert out["cuda_visible"] == SHARED_UUID  # the call saw exactly the granted GPU
    assert out["device"]["exists"] and out["device"]["opened"], out
    code, out = get(node, a, "/gen?n=3")
    assert code == 200 and [i["i"] for i in out["items"]] == [0, 1, 2], out
    assert all(i["device"] for i in out["items"])


def test_the_gpu_exists_in_the_container_only_during_a_call(
    node: Node, pair: tuple[str, str]
) -> None:
    a, _ = pair
    code, outside = get(node, a, "/device")
    assert code == 200
    assert not outside["exists"] and not outside["opened"], outside
    assert outside["mknod"] == "Operation not permitted", outside  # cannot make it itself
    # a process that keeps the GPU open past its call is killed when the lease ends
    code, held = get(node, a, "/hold")
    assert code == 200, held
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        code, alive = get(node, a, f"/alive?pid={held['pid']}")
        if not alive["alive"]:
            break
        time.sleep(0.3)
    assert not alive["alive"], "the process holding the GPU outlived the lease"


def test_concurrent_calls_never_share_the_gpu_and_spaces_take_turns(
    node: Node, pair: tuple[str, str]
) -> None:
    a, b = pair

    def call(space_id: str) -> dict[str, Any]:
        code, out = get(node, space_id, "/work?ms=600&d=3", timeout=90)
        assert code == 200, out
        return {**out, "space": space_id}

    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        firsts = [pool.submit(call, a) for _ in range(3)]
        time.sleep(0.3)  # a's three calls arrive first
        seconds = [pool.submit(call, b) for _ in range(3)]
        results = [f.result() for f in firsts + seconds]
    spans = sorted((r["start"], r["end"], r["space"]) for r in results)
    for (_s1, e1, _), (s2, _, _) in itertools.pairwise(spans):
        assert s2 >= e1 - 0.01, f"two calls held the one pool GPU together: {spans}"
    order = [space for _, _, space in spans]
    # fairness: b's first call does not wait behind all of a's queued calls
    assert order.index(b) < len(order) - 3, order
    assert order[0] == a


def test_a_call_past_its_duration_is_ended_and_the_gpu_goes_on(
    node: Node, pair: tuple[str, str]
) -> None:
    _, b = pair
    started = time.monotonic()
    code, out = get(node, b, "/slow?s=30")
    assert code == 500 and "ran past its duration of 2 s" in out["error"], out
    assert time.monotonic() - started < 15
    code, out = get(node, b, "/work?ms=10&d=3")  # the lease was released
    assert code == 200, out


def test_a_crash_inside_a_call_releases_the_lease(node: Node, pair: tuple[str, str]) -> None:
    _, b = pair
    code, out = get(node, b, "/crash")
    assert code == 500 and "crashed (exit code 9)" in out["error"], out
    code, out = get(node, b, "/work?ms=10&d=3")
    assert code == 200, out


def test_the_quota_of_gpu_seconds_and_the_pool_view(node: Node, pair: tuple[str, str]) -> None:
    """The node's quota is 24 GPU seconds a day per Space (fake_gpus.py): a Space that used
    some is refused a call whose duration would go over, with what it used and when more
    comes; others go on. `GET /api/v1/gpus/shared` shows the pool and each Space's seconds."""
    c = zero_space(node, "zero-quota")
    try:
        code, out = get(node, c, "/work?ms=5000&d=8")
        assert code == 200, out
        code, out = get(node, c, "/work?ms=10&d=20")  # 5 used + 20 asked > 24
        assert code == 500, out
        assert "GPU quota exceeded" in out["error"] and "of its 24 GPU seconds" in out["error"]
        code, out = get(node, c, "/work?ms=10&d=3")  # what fits still runs
        assert code == 200, out
        with node.api() as api:
            view = api.get("/api/v1/gpus/shared").json()
        assert [g["uuid"] for g in view["pool"]] == [SHARED_UUID]
        used = {u["space"]: u for u in view["usage"]}
        assert used[c]["calls"] == 2 and 4.9 < used[c]["gpuSeconds"] < 15, used[c]
        assert pair[0] in used and view["quotaS"] == 24
        with node.api() as api:
            metrics = api.get("/api/v1/metrics").text
        assert f'spaceport_space_gpu_calls_total{{space="{c}"}} 2.0' in metrics, metrics[-800:]
        assert "spaceport_shared_gpu_queue_length 0.0" in metrics
    finally:
        hf(node).delete_repo(c, repo_type="space")


def test_the_broker_refuses_a_forged_token(node: Node, pair: tuple[str, str]) -> None:
    """A Space cannot borrow a GPU under another's name: the token is checked."""
    import json
    import socket

    sock = socket.socket(socket.AF_UNIX)
    sock.connect(str(node.settings.zero_gpu_dir / "broker.sock"))
    req = {"op": "acquire", "space": pair[0], "deployment": "1", "token": "0" * 64}
    sock.sendall((json.dumps(req) + "\n").encode())
    answer = json.loads(sock.makefile("rb").readline())
    sock.close()
    assert "token does not match" in answer["error"], answer
    sock = socket.socket(socket.AF_UNIX)  # nor does anything that is not a request
    sock.connect(str(node.settings.zero_gpu_dir / "broker.sock"))
    sock.sendall(b"[1, 2]\n")
    answer = json.loads(sock.makefile("rb").readline())
    sock.close()
    assert "expected a JSON object" in answer["error"], answer


def test_hardware_lists_the_shared_flavor(node: Node) -> None:
    with node.api() as api:
        flavors = {f["name"]: f for f in api.get("/api/v1/hardware").json()}
    zero = flavors["zero-a10g"]
    assert zero["sharedGpu"] and zero["available"] and "call by call" in zero["note"]


def test_a_dead_broker_is_started_again(node: Node, pair: tuple[str, str]) -> None:
    """Calls fail clearly while the broker is down, and work again once the reconciler has
    started it again."""
    import os
    import signal

    from spaceport.supervisor import read_pid

    a, _ = pair
    pid = read_pid(node.settings, "gpu-broker")
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        again = read_pid(node.settings, "gpu-broker")
        if again is not None and again != pid:
            break
        time.sleep(0.3)
    assert again is not None and again != pid, "the broker was not started again"
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        code, out = get(node, a, "/work?ms=10&d=3")
        if code == 200:
            break
        assert "broker" in out["error"], out  # down: a message that says so
        time.sleep(0.5)
    assert code == 200, out
