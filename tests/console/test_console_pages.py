"""Console pages that need no running app: create a Space, tokens, users, the admin view,
search and filters, delete with typed confirmation. Real Chromium, real node."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from tests.conftest import Node, unique
from tests.console.conftest import CONSOLE, shot, sign_in


def whoami(node: Node, token: str) -> int:
    r = httpx.get(f"{node.url}/api/whoami-v2", headers={"Authorization": f"Bearer {token}"})
    return r.status_code


def test_create_space_shows_remote_and_first_push(
    node: Node, admin_page: Any, artifacts: Path
) -> None:
    page = admin_page
    name = unique("made-in-console")
    page.goto(f"{CONSOLE}/new")
    page.fill("#name", name)
    page.click("label.sdk:has-text('Streamlit')")
    page.click("#create")
    page.wait_for_selector("#created:not(.hidden)")
    assert f"git clone http://localhost:{CONSOLE.rsplit(':', 1)[1]}/spaces/admin/{name}" in (
        page.inner_text("#created-clone")
    )
    shot(page, artifacts, "create-space", full=False)

    page.click("#created-link")
    page.wait_for_url(f"{CONSOLE}/spaces/admin/{name}")
    assert page.get_attribute("#stage-badge", "data-stage") == "NO_APP_FILE"
    assert page.is_visible("#first-push")
    assert "sdk: streamlit" in page.inner_text("#first-push")
    shot(page, artifacts, "space-no-app-file")


def test_search_and_stage_filters(node: Node, admin_page: Any) -> None:
    a = node.create_space(unique("filter-alpha"))
    b = node.create_space(unique("filter-beta"))
    page = admin_page
    page.goto(f"{CONSOLE}/")
    page.fill("#search", a.split("/")[1])
    page.wait_for_function(
        "id => [...document.querySelectorAll('.card:not(.hidden)')].map(c => c.dataset.space)"
        ".join() === id",
        arg=a,
    )
    assert f"q={a.split('/')[1]}" in page.url  # the filter is in the address, shareable
    page.fill("#search", "")
    page.click("#stage-filter button[data-value='ok']")  # Running: neither has an app yet
    page.wait_for_selector(f".card[data-space='{b}'].hidden", state="attached")
    page.click("#stage-filter button[data-value='idle']")
    page.wait_for_selector(f".card[data-space='{b}']:not(.hidden)")


def test_tokens_are_shown_once_and_revocable(node: Node, admin_page: Any, artifacts: Path) -> None:
    page = admin_page
    page.goto(f"{CONSOLE}/settings/tokens")
    name = unique("laptop")
    page.fill("#token-name", name)
    page.select_option("#token-role", "write")
    page.click("#new-token button[type=submit]")
    page.wait_for_selector("#token-shown:not(.hidden)")
    value = page.inner_text("#token-value").strip()
    assert value.startswith("sp_") and whoami(node, value) == 200
    shot(page, artifacts, "tokens", full=False)

    page.reload()
    assert value not in page.content()  # never shown again
    page.once("dialog", lambda d: d.accept())
    page.click(f"tr:has-text('{name}') [data-revoke]")
    page.wait_for_selector(f"tr:has-text('{name}')", state="detached")
    assert whoami(node, value) == 401


def test_admin_creates_a_user_who_sees_their_own_and_public_spaces(
    node: Node, browser: Any, admin_page: Any, artifacts: Path
) -> None:
    hidden = node.create_space(unique("admin-private"), private=True)
    shown = node.create_space(unique("admin-public"))
    page = admin_page
    page.goto(f"{CONSOLE}/admin/users")
    user = unique("dora")
    page.fill("#user-name", user)
    page.fill("#user-fullname", "Dora Explorer")
    page.click("#new-user button[type=submit]")
    page.wait_for_selector("#user-shown:not(.hidden)")
    token = page.inner_text("#user-token").strip()
    assert page.is_visible(f"tr[data-user='{user}']")
    shot(page, artifacts, "users", full=False)

    dora = sign_in(browser, token)
    try:
        cards = dora.eval_on_selector_all(".card", "cs => cs.map(c => c.dataset.space)")
        assert shown in cards and hidden not in cards
        dora.goto(f"{CONSOLE}/spaces/{hidden}")
        assert "does not exist" in dora.inner_text("main")  # private: not even its name leaks
        dora.goto(f"{CONSOLE}/admin")
        assert "Only administrators" in dora.inner_text("main")
        dora.goto(f"{CONSOLE}/new")
        assert dora.input_value("#owner") == user and dora.is_editable("#owner") is False
    finally:
        dora.context.close()


def test_admin_view_lists_nodes_gpus_queue_and_failures(admin_page: Any, artifacts: Path) -> None:
    page = admin_page
    page.goto(f"{CONSOLE}/admin")
    nodes = page.inner_text("#nodes")
    assert "GPUs" in nodes and "CPUs" in nodes
    # The test node runs with a FAKE GPU inventory (tests/runtime/fake_gpus.py): no real GPU.
    assert page.locator("#nodes .gpu").count() >= 1
    assert page.is_visible("#queue") and page.is_visible("#failures")
    shot(page, artifacts, "admin")


def test_admin_view_shows_a_crash_looping_space_as_an_alert(node: Node, admin_page: Any) -> None:
    from tests.runtime.helpers import hf
    from tests.test_metrics import crash_looping

    space_id = node.create_space(unique("loopy"), sdk="static")
    crash_looping(space_id, 3)  # what three failed starts in a row leave in the database
    page = admin_page
    page.goto(f"{CONSOLE}/admin")
    alert = page.locator("#alerts [data-alert=SpaceportSpaceCrashLooping]", has_text=space_id)
    assert "failed to start 3 times in a row" in alert.inner_text()
    hf(node).delete_repo(space_id, repo_type="space")
    page.goto(f"{CONSOLE}/admin")
    assert page.locator("#alerts", has_text=space_id).count() == 0


def test_delete_needs_the_space_id_typed(node: Node, admin_page: Any) -> None:
    space_id = node.create_space(unique("doomed"))
    page = admin_page
    page.goto(f"{CONSOLE}/spaces/{space_id}#settings")
    page.click("#open-delete")
    assert page.is_disabled("#confirm-delete")
    page.fill("#delete-confirm", "admin/something-else")
    assert page.is_disabled("#confirm-delete")
    page.fill("#delete-confirm", space_id)
    page.click("#confirm-delete")
    page.wait_for_url(f"{CONSOLE}/")
    r = httpx.get(f"{node.url}/api/v1/spaces/{space_id}", timeout=10)
    assert r.status_code == 404


def test_custom_domains_in_the_settings(node: Node, admin_page: Any, artifacts: Path) -> None:
    page = admin_page
    space_id = node.create_space(unique("console-domains"), sdk="static")
    domain = f"{unique('www')}.example.test"
    page.goto(f"{CONSOLE}/spaces/{space_id}#settings")
    assert "No custom domains." in page.inner_text("#domains-table")
    page.fill("#domain-name", domain)
    page.click("[data-form='domains'] button[type='submit']")
    row = page.wait_for_selector(f"#domains-table tr[data-domain='{domain}']")
    assert "Waiting for DNS" in row.inner_text()
    assert "point" in row.inner_text() and "DNS" in row.inner_text()
    page.locator("#set-domains").scroll_into_view_if_needed()
    shot(page, artifacts, "settings-custom-domains", full=False)
    page.click(f"[data-delete-domain='{domain}']")
    page.wait_for_selector(f"#domains-table tr[data-domain='{domain}']", state="detached")
    with node.api() as api:
        assert api.get(f"/api/v1/spaces/{space_id}/domains").json() == []


def test_a_long_list_is_paged_and_searched_by_the_server(node: Node, admin_page: Any) -> None:
    """More Spaces than a page (here a page of 2): the server filters and pages, the cards
    shown follow their Spaces, and typing a search asks the server."""
    prefix = unique("paged")
    made = {node.create_space(f"{prefix}-{i}") for i in range(3)}
    page = admin_page
    page.goto(f"{CONSOLE}/?limit=2")
    assert page.get_attribute("#cards", "data-paged") == "1"
    assert len(page.query_selector_all(".card")) == 2
    assert page.is_visible("#pager-next")

    page.fill("#search", prefix)  # the server's search, from the first page
    page.wait_for_url(lambda url: f"q={prefix}" in url and "limit=2" in url)
    seen = page.eval_on_selector_all(".card", "cs => cs.map(c => c.dataset.space)")
    assert "1\u20132 of 3" in page.inner_text("#pager")
    page.click("#pager-next")
    page.wait_for_url(lambda url: url.endswith("offset=2"))
    seen += page.eval_on_selector_all(".card", "cs => cs.map(c => c.dataset.space)")
    assert sorted(seen) == sorted(made)  # each once, newest first across the pages
    assert page.input_value("#search") == prefix and not page.is_visible("#pager-next")
    page.click("#pager-prev")
    page.wait_for_url(lambda url: url.endswith("offset=0"))
    assert len(page.query_selector_all(".card")) == 2

    # The native list pages the same way, for scripts and the console's own poll.
    with node.api() as api:
        first = api.get("/api/v1/spaces", params={"search": prefix, "limit": 2})
        assert first.status_code == 200 and first.headers["X-Total-Count"] == "3"
        nxt = first.headers["Link"].split(";")[0].strip("<>")
        rest = api.get(nxt)
        assert "Link" not in rest.headers
        ids = [s["id"] for s in first.json() + rest.json()]
        assert sorted(ids) == sorted(made)
        assert [s["id"] for s in first.json()] == seen[:2]  # the console's order
