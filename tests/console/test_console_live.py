"""The console with real apps: a RUNNING Space restarted from its page (stages change live,
the container changes, no reload), a failing build's log, a secret set in Settings that the
app then sees, pause and resume reflected on the Spaces list. Real Chromium, real containers.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import EXAMPLES, Node, unique
from tests.console.conftest import APPS, CONSOLE, shot

pytestmark = pytest.mark.slow

BAD_PACKAGE = "this-package-does-not-exist-spaceport"


@pytest.fixture(scope="module")
def spaces(node: Node, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """One running probe app and one failed build; both pushed at once, built side by side."""
    probe = node.create_space(unique("probe"))
    broken = node.create_space(unique("broken"))
    src = tmp_path_factory.mktemp("broken") / "app"
    shutil.copytree(EXAMPLES / "gradio-hello", src)
    (src / "requirements.txt").write_text(f"{BAD_PACKAGE}==9.9.9\n")
    assert node.push(APPS / "gradio_secret", probe).returncode == 0
    assert node.push(src, broken).returncode == 0
    node.wait_stage(broken, {"BUILD_ERROR"}, timeout=240)
    node.wait_stage(probe, {"RUNNING"}, timeout=240)
    return {"probe": probe, "broken": broken}


def api(node: Node, method: str, path: str, **kw: Any) -> httpx.Response:
    with node.api() as c:
        r = c.request(method, path, **kw)
    assert r.status_code < 400, r.text
    return r


def runtime_value(page: Any, key: str) -> str:
    return str(page.inner_text(f"#runtime [data-k='{key}']")).strip()


def wait_stage(page: Any, stage: str, timeout: float = 120) -> None:
    page.wait_for_selector(f"#stage-badge[data-stage='{stage}']", timeout=timeout * 1000)


def test_restart_from_the_page_shows_each_stage_and_a_new_container(
    admin_page: Any, spaces: dict[str, str], artifacts: Path
) -> None:
    page = admin_page
    probe = spaces["probe"]
    page.goto(f"{CONSOLE}/")
    card = page.locator(f".card[data-space='{probe}']")
    assert card.get_attribute("data-stage") == "RUNNING"
    shot(page, artifacts, "spaces")
    card.click()
    page.wait_for_url(f"{CONSOLE}/spaces/{probe}")
    page.wait_for_selector("#app-frame:not(.hidden)")
    page.frame_locator("#app-frame").get_by_text("Console Probe").first.wait_for(timeout=60_000)
    before = runtime_value(page, "container")
    assert len(before) == 12
    page.evaluate("window.__sameDocument = true")
    shot(page, artifacts, "space-running")

    page.click("[data-action=restart]")
    page.wait_for_selector("#timeline li[data-stage$='APP_STARTING']", timeout=60_000)
    page.wait_for_function(
        "before => document.querySelector('#stage-badge').dataset.stage === 'RUNNING'"
        " && document.querySelector(\"#runtime [data-k='container']\").textContent.trim()"
        " !== before",
        arg=before,
        timeout=120_000,
    )
    assert page.evaluate("window.__sameDocument") is True  # live, without a reload
    stages = page.eval_on_selector_all("#timeline li", "ls => ls.map(l => l.dataset.stage)")
    newest_first = list(stages)
    assert newest_first[0] == "RUNNING" and newest_first[1].endswith("APP_STARTING"), stages
    assert runtime_value(page, "container") != before
    page.frame_locator("#app-frame").get_by_text("Console Probe").first.wait_for(timeout=60_000)
    shot(page, artifacts, "space-restarted")


def test_failing_build_log_shows_the_error_line(
    admin_page: Any, spaces: dict[str, str], artifacts: Path
) -> None:
    page = admin_page
    page.goto(f"{CONSOLE}/spaces/{spaces['broken']}#build")
    assert page.get_attribute("#stage-badge", "data-stage") == "BUILD_ERROR"
    line = page.locator("#build-log .ln.err", has_text=BAD_PACKAGE).first
    line.wait_for(timeout=30_000)
    assert page.inner_text("#build-live") in ("ended", "live")
    page.click("[data-tab=app]")
    assert BAD_PACKAGE in page.inner_text("#status-error")  # the App tab says why, too
    page.click("[data-tab=build]")
    shot(page, artifacts, "build-log-error", full=False)


def test_secret_set_in_settings_restarts_the_app_with_it(
    node: Node, admin_page: Any, spaces: dict[str, str], artifacts: Path
) -> None:
    page = admin_page
    probe = spaces["probe"]
    value = unique("s3cr3t")
    page.goto(f"{CONSOLE}/spaces/{probe}#settings")
    before = runtime_value(page, "container")
    page.fill("#secret-key", "PROBE_SECRET")
    page.fill("#secret-value", value)
    page.click("[data-form=secrets] button[type=submit]")
    page.wait_for_selector(".toast:has-text('PROBE_SECRET saved')")
    page.wait_for_selector("#secrets-table tr[data-key='PROBE_SECRET']")
    page.locator("#set-secrets").scroll_into_view_if_needed()
    shot(page, artifacts, "settings-secret", full=False)
    page.wait_for_function(
        "before => document.querySelector('#stage-badge').dataset.stage === 'RUNNING'"
        " && document.querySelector(\"#runtime [data-k='container']\").textContent.trim()"
        " !== before",
        arg=before,
        timeout=120_000,
    )
    page.click("[data-tab=app]")
    digest = hashlib.sha256(value.encode()).hexdigest()[:8]
    frame = page.frame_locator("#app-frame")
    frame.get_by_text(f"probe secret: {digest}").wait_for(timeout=60_000)
    shot(page, artifacts, "app-with-secret")

    page.reload()
    assert value not in page.content()  # write-only: never sent back
    secrets = api(node, "GET", f"/api/spaces/{probe}/secrets").text
    assert value not in secrets


def test_run_logs_stream_the_app_output(admin_page: Any, spaces: dict[str, str]) -> None:
    page = admin_page
    page.goto(f"{CONSOLE}/spaces/{spaces['probe']}#run")
    page.locator("#run-log .ln", has_text="Running on local URL").first.wait_for(timeout=60_000)


def test_pause_and_resume_show_on_the_page_and_the_list(
    node: Node, admin_page: Any, spaces: dict[str, str]
) -> None:
    page = admin_page
    probe = spaces["probe"]
    page.goto(f"{CONSOLE}/spaces/{probe}")
    page.click("#btn-pause")
    wait_stage(page, "PAUSED", 60)
    assert page.is_visible("#btn-resume") and not page.is_visible("#btn-pause")
    assert page.is_hidden("#app-frame")

    page.goto(f"{CONSOLE}/")
    card = f".card[data-space='{probe}']"
    assert page.get_attribute(card, "data-stage") == "PAUSED"
    api(node, "POST", f"/api/spaces/{probe}/restart")  # resumed elsewhere (API, CLI)...
    page.wait_for_selector(f"{card}[data-stage='RUNNING']", timeout=120_000)  # ...shows here


def test_stop_and_start_from_the_page(node: Node, admin_page: Any, spaces: dict[str, str]) -> None:
    page = admin_page
    probe = spaces["probe"]
    page.goto(f"{CONSOLE}/spaces/{probe}")
    wait_stage(page, "RUNNING")
    page.click("#btn-stop")
    wait_stage(page, "STOPPED", 60)
    assert runtime_value(page, "stage") == "Stopped"  # the label, not STOPPED
    assert page.is_visible("#btn-start") and not page.is_visible("#btn-resume")
    assert not page.is_visible("#btn-stop") and not page.is_visible("#btn-pause")
    assert node.runtime(probe)["stage"] == "STOPPED"
    assert page.is_hidden("#app-frame")

    page.click("#btn-start")
    wait_stage(page, "RUNNING", 120)
    assert runtime_value(page, "stage") == "Running"
    assert page.is_visible("#btn-stop") and not page.is_visible("#btn-start")
    page.frame_locator("#app-frame").get_by_text("Console Probe").first.wait_for(timeout=60_000)


def test_duplicate_from_the_page_builds_a_private_copy(
    node: Node, admin_page: Any, spaces: dict[str, str], artifacts: Path
) -> None:
    page = admin_page
    probe = spaces["probe"]
    page.goto(f"{CONSOLE}/spaces/{probe}")
    page.click("#open-duplicate")
    assert page.input_value("#dup-owner") == "admin"
    name = unique("probe-copy")
    page.fill("#dup-name", name)
    page.click("#duplicate-dialog label.switch")  # as a person toggles it
    assert page.is_checked("#dup-private")
    shot(page, artifacts, "duplicate-dialog", full=False)
    page.click("#confirm-duplicate")
    page.wait_for_url(f"{CONSOLE}/spaces/admin/{name}")
    assert page.is_visible("#private-chip")
    wait_stage(page, "RUNNING", 240)
    copy_id = f"admin/{name}"
    assert node.app_get(copy_id).status_code == 404  # private: strangers get nothing
    served = node.app_get(copy_id, headers={"Authorization": f"Bearer {node.token}"})
    assert served.status_code == 200 and "Console Probe" in served.text
    copy = api(node, "GET", f"/api/v1/spaces/{copy_id}").json()
    source = api(node, "GET", f"/api/v1/spaces/{probe}").json()
    assert copy["private"] is True and copy["sha"] == source["sha"]

    page.goto(f"{CONSOLE}/spaces/{probe}")  # the same name again: refused, said in the dialog
    page.click("#open-duplicate")
    page.fill("#dup-name", name)
    page.click("#confirm-duplicate")
    page.wait_for_selector("#dup-error:not(.hidden)")
    assert "already" in page.inner_text("#dup-error")
    assert page.url == f"{CONSOLE}/spaces/{probe}"
