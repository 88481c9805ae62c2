"""The reconciler's watchdog: a step that hangs is reported with where it waits, once."""

from __future__ import annotations

import threading
import time

from structlog.testing import capture_logs

from spaceport import reconciler


def _wait_on_a_dead_node(release: threading.Event) -> None:
    release.wait(10)


def test_a_hanging_step_is_reported_once_with_its_stack() -> None:
    release = threading.Event()
    worker = threading.Thread(
        target=reconciler._step, args=("containers", lambda: _wait_on_a_dead_node(release))
    )
    worker.start()
    reported: set[tuple[int, float]] = set()
    try:
        time.sleep(0.3)
        with capture_logs() as logs:
            assert reconciler.report_slow_steps(reported, slow_s=0.2) == 1
            assert reconciler.report_slow_steps(reported, slow_s=0.2) == 0  # once per run
    finally:
        release.set()
        worker.join()
    [entry] = [e for e in logs if e["event"] == "reconcile.slow_step"]
    assert entry["step"] == "containers"
    assert entry["running_s"] >= 0.2
    assert "_wait_on_a_dead_node" in entry["stack"]
    assert reconciler.report_slow_steps(reported, slow_s=0.0) == 0  # finished: nothing runs


def test_a_quick_step_is_not_reported() -> None:
    reported: set[tuple[int, float]] = set()
    reconciler._step("routes", lambda: None)
    assert reconciler.report_slow_steps(reported, slow_s=0.0) == 0
