"""Quotas in the console: an admin sets a user's limits on the admin page; the user's New Space
form, over the limit, shows the quota's message; their Quota page shows the limit reached."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.conftest import Node, unique
from tests.console.conftest import CONSOLE, shot, sign_in


def test_admin_sets_a_quota_and_the_user_meets_it(
    node: Node, browser: Any, admin_page: Any, artifacts: Path
) -> None:
    name = unique("quentin")
    with node.api() as admin:
        r = admin.post("/api/v1/users", json={"name": name})
        assert r.status_code == 201, r.text
        token = r.json()["token"]

    page = admin_page
    page.goto(f"{CONSOLE}/admin/quotas")
    page.click(f"[data-edit-quota='{name}']")
    assert page.input_value("#quota-namespace") == name
    page.fill("#quota-spaces", "1")
    page.fill("#quota-cpu", "4")
    page.click("#save-quota")
    page.wait_for_selector(f"#quota-{name} tr[data-limit='spaces'] .max:has-text('1')")
    assert page.inner_text(f"#quota-{name} tr[data-limit='cpu'] .max") == "4"
    assert page.inner_text(f"#quota-{name} tr[data-limit='gpus'] .max") == "unlimited"

    user = sign_in(browser, token)
    try:
        user.goto(f"{CONSOLE}/new")
        user.fill("#name", "first")
        user.click("label.sdk:has-text('Static')")
        user.click("#create")
        user.wait_for_selector("#created:not(.hidden)")
        user.fill("#name", "second")
        user.click("#create")
        toast = user.wait_for_selector(".toast.err")
        assert toast.inner_text() == (
            f"Quota exceeded for {name}: at most 1 Spaces, it has 1 ({name}/first). Delete one "
            f"or ask an admin to raise the limit (spaceport quota set {name} --spaces N)."
        )
        shot(user, artifacts, "quota-refused", full=False)

        user.goto(f"{CONSOLE}/settings/quota")
        row = f"#quota-{name} tr[data-limit='spaces']"
        assert user.inner_text(f"{row} .used") == "1 limit reached"
        assert f"{name}/first" in user.inner_text(row)
        shot(user, artifacts, "quota")
        user.goto(f"{CONSOLE}/admin/quotas")
        assert "Only administrators" in user.inner_text("main")
    finally:
        user.context.close()
