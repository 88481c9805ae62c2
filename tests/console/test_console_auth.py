"""Signing in to the console: the session cookie, CSRF on every cookie-borne write, the sign-in
rate limit, signing out. Driven over real HTTP through the proxy (and Chromium for the cookie
flags a browser stores)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from tests.conftest import Node
from tests.console.conftest import CONSOLE, shot


def login_form(client: httpx.Client) -> str:
    page = client.get("/login")
    assert page.status_code == 200
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match, "the sign-in form carries a CSRF field"
    return match.group(1)


def signed_in_client(node: Node, token: str) -> httpx.Client:
    client = httpx.Client(base_url=node.url, timeout=30)
    r = client.post("/login", data={"token": token, "csrf_token": login_form(client), "next": "/"})
    assert r.status_code == 303, r.text
    return client


def page_csrf(client: httpx.Client) -> str:
    match = re.search(r'<meta name="csrf-token" content="([0-9a-f]+)">', client.get("/").text)
    assert match
    return match.group(1)


@pytest.fixture
def clear_rate_limit(node: Node) -> Any:
    yield
    r = redis.Redis.from_url(node.settings.redis_url)
    for key in r.scan_iter("spaceport:login-failures:*"):
        r.delete(key)


def test_sign_in_sets_a_safe_session_cookie_and_sign_out_ends_it(
    node: Node, browser: Any, artifacts: Path
) -> None:
    context = browser.new_context(viewport={"width": 1360, "height": 900})
    page = context.new_page()
    page.goto(f"{CONSOLE}/settings/tokens")
    assert "/login?next=/settings/tokens" in page.url  # pages that need a user send you here
    shot(page, artifacts, "login", full=False)

    page.fill("#token", "sp_this_is_not_a_token")
    page.click("button[type=submit]")
    assert "not valid" in page.inner_text(".alert.err")

    page.fill("#token", node.token)
    page.click("button[type=submit]")
    page.wait_for_url(f"{CONSOLE}/settings/tokens")
    assert page.inner_text(".userpill").strip().startswith("A")
    [cookie] = [c for c in context.cookies() if c["name"] == "spaceport_session"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    assert cookie["value"] != node.token  # the session has a token of its own
    assert "this browser" in page.inner_text("body")  # listed as a revocable session

    page.click("#sign-out")
    page.wait_for_url(f"{CONSOLE}/login")
    stale = httpx.get(
        f"{node.url}/api/whoami-v2", cookies={"spaceport_session": cookie["value"]}, timeout=10
    )
    assert stale.status_code == 401  # signing out revoked the session's token
    context.close()


def test_cookie_borne_writes_need_the_csrf_token(node: Node) -> None:
    client = signed_in_client(node, node.token)
    try:
        assert client.get("/api/whoami-v2").json()["name"] == "admin"  # reads: cookie enough
        body = {"name": "csrf probe", "role": "read"}
        forged = client.post("/api/v1/tokens", json=body)
        assert forged.status_code == 401  # a cookie alone never authorizes a write
        wrong = client.post("/api/v1/tokens", json=body, headers={"X-CSRF-Token": "0" * 64})
        assert wrong.status_code == 401
        good = client.post("/api/v1/tokens", json=body, headers={"X-CSRF-Token": page_csrf(client)})
        assert good.status_code == 201, good.text
        assert good.json()["token"].startswith("sp_")

        # A sign-in form posted from elsewhere (no matching CSRF cookie) is refused.
        other = httpx.post(
            f"{node.url}/login", data={"token": node.token, "csrf_token": "x"}, timeout=10
        )
        assert other.status_code == 403 and "another site" in other.text
        # A forged sign-out keeps the session.
        client.post("/logout", data={"csrf_token": "forged"})
        assert client.get("/api/whoami-v2").status_code == 200
    finally:
        client.close()


def test_sign_in_is_rate_limited_per_address(node: Node, clear_rate_limit: None) -> None:
    client = httpx.Client(base_url=node.url, timeout=30)
    for _ in range(10):
        r = client.post("/login", data={"token": "sp_guess", "csrf_token": login_form(client)})
        assert r.status_code == 401
    r = client.post("/login", data={"token": node.token, "csrf_token": login_form(client)})
    assert r.status_code == 429
    assert "Too many failed sign-ins" in r.text


def test_console_pages_refuse_framing_and_inline_script(node: Node) -> None:
    r = httpx.get(f"{node.url}/", timeout=10)
    assert r.headers["x-frame-options"] == "DENY"
    csp = r.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
    static = httpx.get(f"{node.url}/static/console.js", timeout=10)
    assert static.status_code == 200 and "X-CSRF-Token" in static.text
