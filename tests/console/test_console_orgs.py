"""Organization pages in the real browser: create one, add members and change their roles,
create a Space in it, what a read member and a stranger see, and refusals shown as the API
words them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.conftest import Node, unique
from tests.console.conftest import CONSOLE, shot, sign_in


def _user(node: Node, name: str) -> str:
    with node.api() as admin:
        r = admin.post("/api/v1/users", json={"name": name})
        assert r.status_code == 201, r.text
        return str(r.json()["token"])


def test_an_organization_from_the_console(node: Node, browser: Any, artifacts: Path) -> None:
    lead, student, stranger = unique("lead"), unique("student"), unique("stranger")
    tokens = {name: _user(node, name) for name in (lead, student, stranger)}
    org = unique("lab")
    page = sign_in(browser, tokens[lead])
    try:
        page.goto(f"{CONSOLE}/organizations")
        assert page.locator("#no-orgs").is_visible()
        page.fill("#org-name", org)
        page.fill("#org-fullname", "Vision Lab")
        page.click("#new-org button[type=submit]")
        page.wait_for_url(f"{CONSOLE}/organizations/{org}")
        assert page.locator("#my-role").inner_text() == "admin"

        page.fill("#member-name", student)
        page.select_option("#member-role", "read")
        page.click("#add-member button[type=submit]")
        row = page.locator(f'#members-table tr[data-user="{student}"]')
        row.wait_for()
        assert row.locator("select").input_value() == "read"
        # a typo in a user name: the API's message, not a silent nothing
        page.fill("#member-name", "nobody-" + unique("x"))
        page.click("#add-member button[type=submit]")
        page.locator(".toast.err", has_text="No user named").wait_for()
        # someone without an account: an invitation link into the organization, with a role
        page.select_option("#invite-role", "contributor")
        page.click("#new-invitation button[type=submit]")
        page.locator("#invite-shown:not(.hidden)").wait_for()
        assert "/join/" in page.inner_text("#invite-url")
        with node.api(tokens[lead]) as c:
            pending = [i for i in c.get("/api/v1/invitations").json() if i.get("org") == org]
        assert [i["role"] for i in pending] == ["contributor"], pending
        # the last admin cannot step down
        page.select_option(f'select[data-role-of="{lead}"]', "write")
        page.locator(".toast.err", has_text="last admin").wait_for()

        page.goto(f"{CONSOLE}/new")
        page.select_option("#owner", org)
        name = unique("demo")
        page.fill("#name", name)
        page.click("#create")
        page.locator("#created").wait_for()
        assert page.locator("#created-id").inner_text() == f"{org}/{name}"
        page.goto(f"{CONSOLE}/organizations/{org}")
        page.once("dialog", lambda dialog: dialog.accept())
        page.click("#delete-org")  # it owns a Space now
        page.locator(".toast.err", has_text=f"{org}/{name}").wait_for()
        page.reload()  # the organization's activity, newest first, for its admins
        actions = page.locator("#org-activity tr[data-action]").evaluate_all(
            "rows => rows.map(r => r.dataset.action)"
        )
        assert actions[-1] == "org.create" and "org.member.add" in actions, actions
        assert "space.create" in actions, actions
        spaces_row = page.locator('#org-quota tr[data-limit="spaces"]')
        assert spaces_row.locator(".used").inner_text().startswith("1"), spaces_row.inner_text()
        shot(page, artifacts, "organization")
    finally:
        page.context.close()

    member = sign_in(browser, tokens[student])
    try:
        member.goto(f"{CONSOLE}/organizations")
        member.locator(f'#orgs-table tr[data-org="{org}"]').wait_for()
        member.goto(f"{CONSOLE}/organizations/{org}")
        assert member.locator("#my-role").inner_text() == "read"
        assert member.locator("#add-member").count() == 0
        assert member.locator("select[data-role-of]").count() == 0
        assert member.locator("#org-activity").count() == 0  # the log is for its admins
        member.goto(f"{CONSOLE}/new")  # a reader cannot create Spaces there
        assert member.locator("select#owner").count() == 0
    finally:
        member.context.close()

    outsider = sign_in(browser, tokens[stranger])
    try:
        r = outsider.goto(f"{CONSOLE}/organizations/{org}")
        assert r is not None and r.status == 404
    finally:
        outsider.context.close()
    with node.api(tokens[lead]) as c:
        members = {m["user"]: m["role"] for m in c.get(f"/api/v1/orgs/{org}/members").json()}
    assert members == {lead: "admin", student: "read"}
