"""A private Space's app in a real browser: strangers get the 404 page; its owner signs in on
the console (the console's own login page) and is sent back into the app with a cookie that
belongs to that app's host only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Node
from tests.proxy.conftest import Fleet

pytestmark = pytest.mark.slow


def test_owner_signs_in_through_the_console_and_sees_the_app(
    node: Node, fleet: Fleet, browser: Any, shots: Path
) -> None:
    app_url = node.app_url(fleet.private)
    context = browser.new_context()
    page = context.new_page()
    resp = page.goto(app_url + "headers?from=browser")
    assert resp is not None and resp.status == 404
    page.screenshot(path=str(shots / "private-404.png"))

    page.locator("#sign-in").click()
    page.wait_for_url("**/login?**")
    page.locator("#token").fill(node.token)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(app_url + "headers?from=browser", timeout=30_000)
    seen = page.locator("body").inner_text()
    assert '"host"' in seen and "spaceport_session" not in seen  # no console cookie here

    cookies = {c["name"]: c for c in context.cookies()}
    app_cookie = cookies["spaceport_app_session"]
    assert app_cookie["domain"] == node.app_host(fleet.private).split(":")[0]
    assert app_cookie["httpOnly"]
    page.goto(app_url)
    page.locator("#hello").wait_for()
    page.screenshot(path=str(shots / "private-signed-in.png"))
    context.close()

    stranger = browser.new_page()
    resp = stranger.goto(app_url)
    assert resp is not None and resp.status == 404
    stranger.close()
