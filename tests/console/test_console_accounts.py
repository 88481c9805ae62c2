"""Console pages for tokens and people: a scoped, expiring token; an invitation link; an
admin deactivating, reactivating and deleting a user (their Spaces given to another owner).
Real Chromium, real node."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from tests.conftest import Node, unique
from tests.console.conftest import CONSOLE, shot


def whoami(node: Node, token: str) -> int:
    r = httpx.get(f"{node.url}/api/whoami-v2", headers={"Authorization": f"Bearer {token}"})
    return r.status_code


def test_a_scoped_expiring_token_from_the_tokens_page(
    node: Node, admin_page: Any, artifacts: Path
) -> None:
    space = node.create_space(unique("scoped"), sdk="static")
    page = admin_page
    page.goto(f"{CONSOLE}/settings/tokens")
    name = unique("ci")
    page.fill("#token-name", name)
    page.select_option("#token-role", "write")
    page.fill("#token-scope", f"space:{space}")
    page.fill("#token-expires", "7")
    page.click("#new-token button[type=submit]")
    page.wait_for_selector("#token-shown:not(.hidden)")
    value = page.inner_text("#token-value").strip()
    assert whoami(node, value) == 200
    page.reload()
    row = page.locator(f"tr:has-text('{name}')")
    assert f"space:{space}" in row.locator("[data-col=scope]").inner_text()
    assert "UTC" in row.locator("[data-col=expires]").inner_text()
    shot(page, artifacts, "tokens-scoped", full=False)
    with httpx.Client(base_url=node.url, headers={"Authorization": f"Bearer {value}"}) as c:
        other = node.create_space(unique("unscoped"), sdk="static")
        assert c.post(f"/api/spaces/{other}/pause").status_code == 403


def test_admin_invites_deactivates_and_deletes_users(
    node: Node, admin_page: Any, artifacts: Path
) -> None:
    page = admin_page
    page.goto(f"{CONSOLE}/admin/users")
    page.click("#new-invitation button[type=submit]")
    page.wait_for_selector("#invite-shown:not(.hidden)")
    link = page.inner_text("#invite-url")
    assert link.startswith(f"{CONSOLE}/join/")
    page.reload()  # listed as pending, and revocable
    page.click("#invitations-table tr:first-child [data-uninvite]")
    page.wait_for_selector(".toast.ok")
    assert httpx.get(link, timeout=30).status_code == 410

    with httpx.Client(base_url=node.url, headers={"Authorization": f"Bearer {node.token}"}) as c:
        made = c.post("/api/v1/users", json={"name": unique("leaver")}).json()
        name, token = made["name"], made["token"]
    work = unique("work")
    with httpx.Client(base_url=node.url, headers={"Authorization": f"Bearer {token}"}) as c:
        r = c.post("/api/repos/create", json={"type": "space", "name": work, "sdk": "static"})
        assert r.status_code == 200, r.text
    page.reload()
    row = f"tr[data-user='{name}']"
    page.once("dialog", lambda d: d.accept())
    page.click(f"{row} [data-user-action=deactivate]")
    page.wait_for_selector(f"{row} [data-state=deactivated]")
    assert whoami(node, token) == 401
    shot(page, artifacts, "users-deactivated", full=False)
    page.click(f"{row} [data-user-action=activate]")
    page.wait_for_selector(f"{row} [data-user-action=deactivate]")
    assert whoami(node, token) == 200

    page.click(f"{row} [data-user-delete]")
    page.fill("#user-delete-to", "admin")
    page.click("#user-delete-go")
    page.wait_for_selector(row, state="detached")
    assert whoami(node, token) == 401
    with httpx.Client(base_url=node.url, headers={"Authorization": f"Bearer {node.token}"}) as c:
        assert c.get(f"/api/spaces/admin/{work}").status_code == 200
