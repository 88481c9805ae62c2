"""A Space that is not running answers with the platform's page, never a bare 502: building
(stage and live build log, then the app once it is up), asleep (the visit wakes it), a dead
container, paused, build error. Browsers get HTML, API clients asking for JSON get JSON."""

from __future__ import annotations

import shutil
import time
import uuid
from pathlib import Path
from typing import Any

import docker
import pytest

from tests.conftest import Node, unique
from tests.proxy.conftest import APPS, via_proxy

pytestmark = pytest.mark.slow
JSON = {"Accept": "application/json"}


def _variant(tmp: Path, dockerfile_step: str) -> tuple[Path, str]:
    """The protocol app with one more Dockerfile step, made unique so no build cache skips it."""
    marker = f"spaceport-marker-{uuid.uuid4().hex[:10]}"
    dst = tmp / marker
    shutil.copytree(APPS / "protocol", dst)
    dockerfile = dst / "Dockerfile"
    lines = dockerfile.read_text().splitlines()
    lines.insert(2, dockerfile_step.format(marker=marker))
    dockerfile.write_text("\n".join(lines) + "\n")
    return dst, marker


def _wait(check: Any, timeout: float, every: float = 0.3) -> Any:
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"not within {timeout}s; last: {value!r}")


def test_a_space_through_its_life(node: Node, tmp_path: Path, browser: Any, shots: Path) -> None:
    space_id = node.create_space(unique("px-life"), sdk="docker")
    src, marker = _variant(tmp_path, "RUN echo {marker} && sleep 8")
    assert node.push(src, space_id).returncode == 0

    # Building: JSON with the stage and the live build log.
    def building_log() -> Any:
        r = via_proxy(node, space_id, headers=JSON)
        body = r.json()
        return (
            r.status_code == 503
            and body["stage"] == "BUILDING"
            and any(marker in line for line in body["log"])
            and body
        )

    body = _wait(building_log, 60)
    assert body["message"].startswith("This Space is building")

    # A browser on the app's URL sees the build, then the app itself without reloading by hand.
    page = browser.new_page()
    page.goto(node.app_url(space_id))
    assert page.locator("#stage").inner_text() in ("BUILDING", "APP_STARTING")
    page.locator("#log").filter(has_text=marker).wait_for(timeout=20_000)
    page.screenshot(path=str(shots / "status-building.png"))
    page.locator("#hello").wait_for(timeout=120_000)
    assert page.title() == "Protocol app"
    page.close()

    # Asleep. Light sleep (frozen, route kept): the request itself thaws the app and is
    # answered. Full sleep (stopped, route gone): the visitor gets the status page, the visit
    # wakes the Space, and the app answers again.
    with node.api() as c:
        assert c.post(f"/api/spaces/{space_id}/sleeptime", json={"seconds": 6}).status_code == 200
    node.wait_stage(space_id, {"SLEEPING"}, timeout=60)
    thawed = via_proxy(node, space_id)
    assert thawed.status_code == 200 and "Protocol app" in thawed.text
    engine = docker.from_env()

    def stopped() -> bool:  # running or frozen (paused) both still hold the route
        found = engine.containers.list(
            all=True, filters={"label": f"org.spaceport.space={space_id}"}
        )
        return all(c.status not in ("running", "paused") for c in found)

    _wait(stopped, 60)
    with node.api() as c:
        c.post(f"/api/spaces/{space_id}/sleeptime", json={"seconds": -1})
    # A request other than GET or HEAD is not held while the Space wakes: it gets the status
    # page, which says the Space is asleep (a GET is held: tests/runtime/test_sleep.py).
    asleep = via_proxy(node, space_id, "POST")
    assert asleep.status_code == 503 and asleep.headers["x-spaceport-status"] == "1"
    assert "asleep" in asleep.text
    woke = _wait(lambda: (r := via_proxy(node, space_id)).status_code == 200 and r, 90)
    assert "Protocol app" in woke.text

    # Its container dies: the visitor gets the status page, not a bare 502.
    [container] = engine.containers.list(filters={"label": f"org.spaceport.space={space_id}"})
    container.kill()
    dead = via_proxy(node, space_id)
    assert dead.status_code in (502, 503) and dead.headers["x-spaceport-status"] == "1", dead.text

    # Paused by its owner.
    with node.api() as c:
        assert c.post(f"/api/spaces/{space_id}/pause").status_code == 200
    node.wait_stage(space_id, {"PAUSED"}, timeout=60)
    paused = via_proxy(node, space_id)
    assert paused.status_code == 503 and "paused by its owner" in paused.text
    assert via_proxy(node, space_id, headers=JSON).json()["stage"] == "PAUSED"

    # A failed build: the page shows what went wrong.
    broken, _ = _variant(tmp_path, "RUN echo {marker} && exit 3")
    assert node.push(broken, space_id).returncode == 0
    node.wait_stage(space_id, {"BUILD_ERROR"}, timeout=90)
    failed = via_proxy(node, space_id, headers=JSON).json()
    assert failed["stage"] == "BUILD_ERROR" and failed["error"]
    html = via_proxy(node, space_id)
    assert html.status_code == 503 and "The build failed" in html.text

    from huggingface_hub import HfApi

    HfApi(endpoint=node.url, token=node.token).delete_repo(space_id, repo_type="space")
    gone = via_proxy(node, space_id, headers=JSON)
    assert gone.status_code == 404
