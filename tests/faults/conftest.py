"""Fault tests' shared fixture: a Space running the echo app, deleted afterwards."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import Node
from tests.runtime.helpers import echo_space, hf


@pytest.fixture
def running_space(node: Node) -> Iterator[str]:
    space_id = echo_space(node, "fault")
    yield space_id
    hf(node).delete_repo(space_id, repo_type="space", missing_ok=True)
