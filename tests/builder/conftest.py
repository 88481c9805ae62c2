"""The builder tests' own cleanup: the images their Spaces built are removed when the session
ends, after the node has stopped their containers (an image a container uses cannot go)."""

from __future__ import annotations

import pytest

from tests.builder import helpers


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    helpers.remove_space_images(helpers.SPACES_TO_CLEAN)
