"""The console's graphs (static/graphs.js, vendored uPlot) in real Chromium: after traffic to
a running Space its page draws requests, memory and its build; the admin page draws the node's
use and names the Space among the busiest."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.conftest import Node
from tests.console.conftest import CONSOLE, shot
from tests.runtime.helpers import echo_space, hf, settled, wait_for

VISITS = 7


def test_a_spaces_graphs_show_its_traffic_and_the_admin_page_the_node(
    node: Node, admin_page: Any, artifacts: Path
) -> None:
    space_id = echo_space(node, "graphs")
    try:
        settled(node, space_id)
        for _ in range(VISITS):
            assert node.app_get(space_id).status_code == 200

        def counted() -> bool:  # the sampler (every 2 s here) has folded the visits in
            with node.api() as api:
                points = api.get(f"/api/v1/spaces/{space_id}/metrics/history").json()["points"]
            return sum(p["requests"] for p in points) >= VISITS

        wait_for(counted, 60, every=1)  # a point every pass: slower under load
        page = admin_page
        page.goto(f"{CONSOLE}/spaces/{space_id}#metrics")
        page.wait_for_selector("#graphs[data-drawn]")
        assert int(page.get_attribute("#graphs", "data-requests") or 0) >= VISITS
        assert "requests" in page.inner_text("#graphs-summary")
        for graph in ("traffic", "memory", "awake"):
            assert page.locator(f'[data-graph="{graph}"] canvas').count() >= 1, graph
        assert int(page.get_attribute('[data-graph="memory"]', "data-points") or 0) >= 1
        assert page.locator('[data-graph="builds"] .bars li').count() >= 1  # its build
        assert "running" in page.inner_text("#graphs-events")
        shot(page, artifacts, "space-graphs")

        page.goto(f"{CONSOLE}/admin")
        page.wait_for_selector("#admin-graphs[data-drawn]")
        assert page.locator('[data-graph="node"] canvas').count() >= 1
        assert space_id in page.inner_text('[data-graph="busiest"]')
        assert "CPU" in page.inner_text("#admin-graphs #graphs-summary")
        shot(page, artifacts, "admin-graphs")
    finally:
        hf(node).delete_repo(space_id, repo_type="space", missing_ok=True)
