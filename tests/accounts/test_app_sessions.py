"""A private app's cookie lives no longer than the console session it was signed in from:
signing out, revoking that session or deactivating its user closes the app on the next request.
The handshake is the real one (console -> ticket -> the app host's cookie), over HTTP through
the proxy; tests/proxy/test_private_apps.py walks it in a browser."""

from __future__ import annotations

import html
import re
from urllib.parse import urlparse

import httpx
import pytest

from tests.accounts.conftest import console_client, make_space, make_user, session_token_id
from tests.conftest import EXAMPLES, Node

pytestmark = pytest.mark.slow


def app_cookie(node: Node, console: httpx.Client, space_id: str) -> str:
    """Sign the console's user in to the app: the console's ticket, traded on the app host."""
    start = console.get("/api/v1/app-access/start", params={"next": node.app_url(space_id)})
    assert start.status_code == 200, start.text
    match = re.search(r'url=([^"]+)"', start.text)
    assert match, start.text
    callback = urlparse(html.unescape(match.group(1)))
    r = node.app_get(space_id, f"{callback.path}?{callback.query}")
    assert r.status_code == 303, r.text
    return str(r.cookies["spaceport_app_session"])


def opens(node: Node, space_id: str, cookie: str) -> int:
    return node.app_get(space_id, "/", cookies={"spaceport_app_session": cookie}).status_code


def test_app_cookies_end_with_their_console_session_and_their_user(node: Node) -> None:
    ivy = make_user(node, "ivy", admin=True)  # an admin may open anyone's private app
    space = make_space(node, node.token, private=True)
    assert node.push(EXAMPLES / "static-site", space).returncode == 0
    node.wait_stage(space, {"RUNNING"})

    console = console_client(node, ivy.token)
    cookie = app_cookie(node, console, space)
    assert opens(node, space, cookie) == 200
    with node.api(ivy.token) as c:
        assert c.delete(f"/api/v1/tokens/{session_token_id(node, ivy.token)}").status_code == 200
    assert opens(node, space, cookie) == 404  # at once: the session it came from is gone

    console = console_client(node, ivy.token)
    cookie = app_cookie(node, console, space)
    assert opens(node, space, cookie) == 200
    with node.api() as admin:
        assert admin.post(f"/api/v1/users/{ivy.name}/deactivate").status_code == 200
    assert opens(node, space, cookie) == 404
    with node.api() as admin:
        assert admin.post(f"/api/v1/users/{ivy.name}/activate").status_code == 200
    assert opens(node, space, cookie) == 200  # the session was never revoked

    csrf = re.search(r'<meta name="csrf-token" content="([0-9a-f]+)">', console.get("/").text)
    assert csrf
    assert console.post("/logout", data={"csrf_token": csrf.group(1)}).status_code == 303
    assert opens(node, space, cookie) == 404
