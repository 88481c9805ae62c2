"""Runtime tests: the `dockerd_restart` marker, and its tests moved to the very end of a run.

Restarting dockerd stops every container on the machine (the reconciler brings Spaces back);
running it last keeps it from disturbing other tests' containers mid-test.
"""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "dockerd_restart: restarts the machine's dockerd; runs in CI (CI=true) or with "
        "SPACEPORT_TEST_RESTART_DOCKERD=1, skipped elsewhere",
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    last = [i for i in items if i.get_closest_marker("dockerd_restart")]
    if last:
        items[:] = [i for i in items if i not in last] + last
