"""The audit log in the console: a Space's Activity tab (for those who may change it) and the
admin's Audit log page with its filters and export. Real Chromium, real node."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.conftest import Node, unique
from tests.console.conftest import CONSOLE, shot, sign_in

VALUE = "console-secret-" + unique("v")


def test_activity_tab_and_admin_audit_log(
    node: Node, admin_page: Any, browser: Any, artifacts: Path
) -> None:
    page = admin_page
    space_id = node.create_space(unique("console-audit"), sdk="static")
    page.goto(f"{CONSOLE}/spaces/{space_id}#settings")
    page.fill("#secret-key", "CONSOLE_KEY")
    page.fill("#secret-value", VALUE)
    page.click("[data-form='secrets'] button[type='submit']")
    page.wait_for_selector("#secrets-table tr[data-key='CONSOLE_KEY']")

    page.reload()  # the page as rendered now, with the change
    page.click("a[data-tab='activity']")
    page.wait_for_selector("#activity tr[data-action='space.secret.set']")
    rows = page.locator("#activity tbody tr")
    assert [rows.nth(i).get_attribute("data-action") for i in range(rows.count())] == [
        "space.secret.set",
        "space.create",
    ]
    changed = page.inner_text("#activity tr[data-action='space.secret.set']")
    assert "admin" in changed and "console session" in changed  # through the console's session
    assert "key=CONSOLE_KEY" in changed
    assert "\t127.0.0.1\t" in changed or "\t::1\t" in changed  # localhost: either loopback
    assert VALUE not in page.content()
    shot(page, artifacts, "space-activity", full=False)

    page.goto(f"{CONSOLE}/admin/audit?space={space_id}")
    assert page.locator("#audit-log tbody tr[data-action]").count() == 2
    page.fill("#f-action", "space.secret")
    page.click("#audit-filters button[type='submit']")
    page.wait_for_url("**action=space.secret**")
    assert page.locator("#audit-log tbody tr[data-action]").count() == 1
    shot(page, artifacts, "admin-audit-log", full=False)
    export = page.get_attribute("#audit-export", "href")
    assert "format=jsonl" in export and "action=space.secret" in export
    lines = page.request.get(f"{CONSOLE}{export}").text().splitlines()
    assert [json.loads(line)["action"] for line in lines] == ["space.secret.set"]

    with node.api() as admin:
        visitor = admin.post("/api/v1/users", json={"name": unique("dave")}).json()
    other = sign_in(browser, visitor["token"])
    try:
        other.goto(f"{CONSOLE}/spaces/{space_id}")
        assert other.locator("a[data-tab='activity']").count() == 0  # may not change it
        other.goto(f"{CONSOLE}/admin/audit")
        assert "Only administrators" in other.content()
    finally:
        other.context.close()
