"""A fork bomb, a memory hog and a busy loop inside one app hit that app's limits (from its
hardware flavor) and leave other apps and the control plane answering.

The node runs with a tiny test flavor (`test-tiny`, set by tests/conftest.py) so the limits are
reached quickly without straining the machine.
"""

from __future__ import annotations

import json
import statistics
import threading
import time
from pathlib import Path
from typing import Any

import docker
import httpx
import pytest

from tests.conftest import PUBLIC_PORT, Node, unique

pytestmark = pytest.mark.slow
PROBE = Path(__file__).parent / "probe_app"


@pytest.fixture(scope="module")
def tiny(node: Node) -> str:
    space = node.create_space(unique("hog"), sdk="docker", hardware="test-tiny")
    assert node.push(PROBE, space).returncode == 0
    node.wait_stage(space, {"RUNNING"})
    return space


@pytest.fixture(scope="module")
def neighbour(node: Node) -> str:
    space = node.create_space(unique("calm"), sdk="docker")
    assert node.push(PROBE, space).returncode == 0
    node.wait_stage(space, {"RUNNING"})
    return space


def call(node: Node, space: str, path: str) -> str:
    resp = node.app_get(space, path, timeout=90)
    assert resp.status_code == 200, resp.text
    return str(json.loads(resp.text).get("out", ""))


def test_limits_come_from_the_flavor(node: Node, tiny: str) -> None:
    [container] = docker.from_env().containers.list(
        filters={"label": f"org.spaceport.space={tiny}"}
    )
    host = container.attrs["HostConfig"]
    assert host["Memory"] == 256 * 1024**2
    assert host["NanoCpus"] == int(0.5e9)
    assert host["PidsLimit"] == 128


def test_fork_bomb_hits_pids_limit(node: Node, tiny: str) -> None:
    out = call(node, tiny, "/forkbomb")
    assert "fork" in out.lower() or "resource temporarily unavailable" in out.lower(), out
    time.sleep(5)  # the bomb's children exit; the app answers again
    assert node.app_get(tiny, "/").status_code == 200


def test_memory_hog_is_killed_not_the_host(node: Node, tiny: str) -> None:
    out = call(node, tiny, "/memhog")
    assert "[rc=-9]" in out or "MemoryError" in out, out  # OOM-killed inside its cgroup
    assert node.app_get(tiny, "/").status_code == 200


def test_busy_loop_leaves_others_answering(
    node: Node, tiny: str, neighbour: str, artifacts: Path
) -> None:
    def latencies(fn: object, n: int = 15) -> list[float]:
        out = []
        for _ in range(n):
            t = time.perf_counter()
            resp = fn()  # type: ignore[operator]
            assert resp.status_code == 200
            out.append((time.perf_counter() - t) * 1000)
        return out

    def api() -> httpx.Response:
        return httpx.get(f"http://127.0.0.1:{PUBLIC_PORT}/api/v1/health", timeout=10)

    def other() -> httpx.Response:
        return node.app_get(neighbour, "/", timeout=10)

    before_api, before_app = latencies(api), latencies(other)
    assert call(node, tiny, "/burn?seconds=8") == "burning"
    during_api, during_app = latencies(api), latencies(other)
    report = {
        "api_median_ms": [statistics.median(before_api), statistics.median(during_api)],
        "other_app_median_ms": [statistics.median(before_app), statistics.median(during_app)],
    }
    (artifacts / "safety-busy-loop.json").write_text(json.dumps(report, indent=2))
    print("latency before/during the busy loop:", report)


def test_log_flood_is_capped_and_stalls_nothing(
    node: Node, tiny: str, neighbour: str, artifacts: Path
) -> None:
    """An app printing megabytes per second: its log passes at the node's rate cap (a start-up
    burst, then `log_rate` bytes/s, in whole lines) with a note of what was dropped, which the
    owner reads in the app's log; on disk it stays within the rotation cap (2 files of 10 MB);
    the control plane, its neighbour and the app itself keep answering."""
    [container] = docker.from_env().containers.list(
        filters={"label": f"org.spaceport.space={tiny}"}
    )
    log_path = Path(container.attrs["LogPath"])
    rate, burst = int(node.settings.log_rate), int(node.settings.log_burst)
    seen = {"flood_bytes": 0, "cut_lines": 0, "notes": 0}
    notes: list[str] = []
    reader = threading.Thread(target=count_log, args=(container, seen, notes), daemon=True)
    reader.start()
    time.sleep(1)  # the reader follows the log from now on
    t0 = time.monotonic()
    assert call(node, tiny, "/flood?seconds=20") == "flooding"
    worst = {"api": 0.0, "neighbour": 0.0, "app": 0.0}
    peak_bytes = 0
    end = time.monotonic() + 20
    while time.monotonic() < end:
        for key, fn in (
            ("api", lambda: httpx.get(f"http://127.0.0.1:{PUBLIC_PORT}/api/v1/health", timeout=5)),
            ("neighbour", lambda: node.app_get(neighbour, "/", timeout=5)),
            ("app", lambda: node.app_get(tiny, "/", timeout=5)),
        ):
            t = time.perf_counter()
            assert fn().status_code == 200, key
            worst[key] = max(worst[key], time.perf_counter() - t)
        files = list(log_path.parent.glob(log_path.name + "*"))
        peak_bytes = max(peak_bytes, sum(f.stat().st_size for f in files if f.exists()))
        time.sleep(0.5)
    time.sleep(3)  # the last lines and notes reach the reader
    elapsed = time.monotonic() - t0
    with node.api() as c, c.stream("GET", f"/api/spaces/{tiny}/logs/run", timeout=10) as r:
        assert r.status_code == 200
        lines = r.iter_lines()
        first = next(lines)
        owner_sees = next(line for line in lines if "[spaceport] " in line)  # the owner's view
    assert first.startswith(("data:", "event:", ":")), first
    report = {
        "log_bytes_peak": peak_bytes,
        "worst_latency_s": worst,
        "log_rate_bytes_per_s": seen["flood_bytes"] / elapsed,
        **seen,
    }
    (artifacts / "safety-log-flood.json").write_text(json.dumps(report, indent=2))
    print("log flood:", report, notes[:3])
    assert seen["flood_bytes"] <= burst + rate * elapsed, report  # the cap
    assert seen["flood_bytes"] >= burst + rate * 10, report  # the flood flowed at it all along
    assert seen["cut_lines"] == 0, report  # whole lines only
    assert seen["notes"] >= 10, report  # one a second
    assert "bytes of stdout dropped: the app logs faster than 1048576 bytes/s" in notes[0], notes
    assert "bytes of stdout dropped" in owner_sees, owner_sees
    assert peak_bytes > 10 * 1024**2, "the flood did not reach the log (test broken?)"
    assert peak_bytes <= 21 * 1024**2, f"{peak_bytes} bytes of log on disk"


FLOOD_LINE = b"flood " * 170 + b"\n"  # tests/safety/probe_app/probe.py


def count_log(container: Any, seen: dict[str, int], notes: list[str]) -> None:
    """Follow the app's log as the engine stores it: flood bytes, cut lines and notes."""
    for line in container.logs(stream=True, follow=True, since=int(time.time())):
        if line == FLOOD_LINE:
            seen["flood_bytes"] += len(line)
        elif line.startswith(b"[spaceport] "):
            seen["notes"] += 1
            notes.append(line.decode(errors="replace"))
        elif b"flood" in line:
            seen["cut_lines"] += 1
