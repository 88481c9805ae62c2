"""Fine-grained tokens: limited to named Spaces or organizations, with an expiry, and revoked
at once on every way in (API, git, the console). Driven over the real API, git and
huggingface_hub against the session's node."""

from __future__ import annotations

import os
import re
import subprocess
from datetime import timedelta

from huggingface_hub import HfApi
from sqlalchemy import select

from spaceport.db.models import AuditEvent, Token, utcnow
from spaceport.db.session import session_scope
from tests.accounts.conftest import (
    console_client,
    make_space,
    make_token,
    make_user,
    session_token_id,
)
from tests.conftest import EXAMPLES, Node


def ls_remote(node: Node, space_id: str, token: str) -> subprocess.CompletedProcess[str]:
    url = f"{node.url}/spaces/{space_id}".replace("://", f"://x:{token}@")
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "/bin/false"}
    argv = ["git", "ls-remote", url]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)


def test_a_scoped_token_reaches_only_its_space(node: Node) -> None:
    alice = make_user(node, "alice")
    mine, other = make_space(node, alice.token), make_space(node, alice.token)
    scoped = make_token(node, alice.token, scope=[f"space:{mine}"], expiresInDays=30)
    assert scoped["scope"] == [f"space:{mine}"] and scoped["expiresAt"]

    with node.api(scoped["token"]) as c:
        assert c.put(f"/api/spaces/{mine}/settings", json={"private": True}).status_code == 200
        refused = c.put(f"/api/spaces/{other}/settings", json={"private": True})
        assert refused.status_code == 403
        assert f"limited to space:{mine}" in refused.json()["error"]
        # A scoped token cannot mint a wider one.
        wider = c.post("/api/v1/tokens", json={"name": "wider", "role": "write"})
        assert wider.status_code == 201 and wider.json()["scope"] == [f"space:{mine}"]
    with node.api(alice.token) as c:  # nothing changed on the other Space
        assert c.get(f"/api/spaces/{other}").json()["private"] is False

    pushed = node.push(EXAMPLES / "static-site", other, scoped["token"])
    assert pushed.returncode != 0
    assert f"limited to space:{mine}" in pushed.stderr, pushed.stderr
    pushed = node.push(EXAMPLES / "static-site", mine, scoped["token"])
    assert pushed.returncode == 0, pushed.stderr

    # Signed in to the console with it, the session is no wider than the token.
    browser = console_client(node, scoped["token"])
    csrf = re.search(r'<meta name="csrf-token" content="([0-9a-f]+)">', browser.get("/").text)
    assert csrf
    headers = {"X-CSRF-Token": csrf.group(1)}
    r = browser.put(f"/api/spaces/{other}/settings", json={"private": True}, headers=headers)
    assert r.status_code == 403 and f"limited to space:{mine}" in r.json()["error"]
    with node.api(alice.token) as c:
        [listed] = [t for t in c.get("/api/v1/tokens").json() if t["kind"] == "session"]
        assert listed["scope"] == [f"space:{mine}"] and listed["expiresAt"] == scoped["expiresAt"]
    browser.close()


def test_a_scope_must_name_what_its_user_reaches(node: Node) -> None:
    alice, bob = make_user(node, "alice"), make_user(node, "bob")
    bobs = make_space(node, bob.token)
    with node.api(alice.token) as c:
        for scope, status, words in (
            ([f"space:{bobs}"], 403, "your own Spaces"),
            (["org:no-such-org"], 400, "no organization"),
            (["spaces/x"], 400, "space:owner/name"),
            ([], 400, "at least one"),
        ):
            r = c.post("/api/v1/tokens", json={"name": "x", "scope": scope})
            assert r.status_code == status, (scope, r.text)
            assert words in r.json()["error"], r.text
        r = c.post("/api/v1/tokens", json={"name": "x", "expiresAt": "2001-01-01"})
        assert r.status_code == 400 and "future" in r.json()["error"]
        r = c.post("/api/v1/tokens", json={"name": "x", "expiresAt": "2099-12-31"})
        assert r.status_code == 201 and r.json()["expiresAt"] == "2099-12-31T23:59:59Z"


def test_huggingface_hub_sees_a_fine_grained_token(node: Node) -> None:
    alice = make_user(node, "alice")
    space = make_space(node, alice.token)
    scoped = make_token(node, alice.token, scope=[f"space:{space}"])
    me = HfApi(endpoint=node.url, token=scoped["token"]).whoami()
    token = me["auth"]["accessToken"]
    # huggingface_hub < 1.0's get_token_permission() returned exactly this field.
    assert token["role"] == "fineGrained" and token["displayName"] == scoped["name"]
    [entry] = token["fineGrained"]["scoped"]
    assert entry["entity"] == {"_id": f"space:{space}", "type": "space", "name": space}
    assert entry["permissions"] == ["repo.content.read", "repo.write"]
    plain = HfApi(endpoint=node.url, token=alice.token).whoami()["auth"]["accessToken"]
    assert plain["role"] == "write" and "fineGrained" not in plain


def test_an_expired_token_is_refused_on_the_api_and_git(node: Node) -> None:
    alice = make_user(node, "alice")
    space = make_space(node, alice.token, private=True)
    made = make_token(node, alice.token, expiresInDays=1)
    assert ls_remote(node, space, made["token"]).returncode == 0
    with session_scope() as session:  # a day later
        row = session.get(Token, made["id"])
        assert row is not None
        row.expires_at = utcnow() - timedelta(seconds=1)
    with node.api(made["token"]) as c:
        r = c.get("/api/whoami-v2")
        assert r.status_code == 401 and "Invalid credentials" in r.json()["error"]
    out = ls_remote(node, space, made["token"])
    assert out.returncode != 0 and "invalid credentials" in out.stderr.lower(), out.stderr
    with node.api(alice.token) as c:  # still listed, with the moment it ended
        [listed] = [t for t in c.get("/api/v1/tokens").json() if t["id"] == made["id"]]
        assert listed["expiresAt"] is not None and listed["lastUsedAt"] is not None


def test_revoking_stops_a_token_at_once_on_api_git_and_console(node: Node) -> None:
    alice = make_user(node, "alice")
    space = make_space(node, alice.token, private=True)
    made = make_token(node, alice.token)
    assert ls_remote(node, space, made["token"]).returncode == 0
    browser = console_client(node, alice.token)
    assert browser.get("/settings/tokens").status_code == 200
    session_id = session_token_id(node, alice.token)

    with node.api(alice.token) as c:
        assert c.delete(f"/api/v1/tokens/{made['id']}").status_code == 200
        assert c.delete(f"/api/v1/tokens/{session_id}").status_code == 200
    with node.api(made["token"]) as c:
        assert c.get("/api/whoami-v2").status_code == 401
    assert ls_remote(node, space, made["token"]).returncode != 0
    page = browser.get("/settings/tokens")
    assert page.status_code == 303 and page.headers["location"].startswith("/login")
    browser.close()

    with session_scope() as session:
        actions = session.scalars(
            select(AuditEvent.action).where(AuditEvent.actor == alice.name)
        ).all()
    assert actions.count("token.create") == 1 and actions.count("token.revoke") == 2


def test_revoking_a_token_signs_out_the_console_sessions_it_started(node: Node) -> None:
    """A browser signed in with a token is signed out when that token is revoked; a session
    signed in with another token of the same user stays."""
    alice = make_user(node, "alice")
    laptop = make_token(node, alice.token)
    signed_in = console_client(node, laptop["token"])
    other = console_client(node, alice.token)
    assert signed_in.get("/settings/tokens").status_code == 200
    with node.api(alice.token) as c:
        sessions_before = [t for t in c.get("/api/v1/tokens").json() if t["kind"] == "session"]
        assert c.delete(f"/api/v1/tokens/{laptop['id']}").status_code == 200
        sessions_after = [t for t in c.get("/api/v1/tokens").json() if t["kind"] == "session"]
    page = signed_in.get("/settings/tokens")
    assert page.status_code == 303 and page.headers["location"].startswith("/login")
    assert other.get("/settings/tokens").status_code == 200
    assert len(sessions_after) == len(sessions_before) - 1  # its row went with the token
    signed_in.close()
    other.close()


def test_a_narrow_token_never_mints_wider_rights(node: Node) -> None:
    """A fine-grained token of an administrator is not an administrator's token; a token that
    expires makes only tokens that expire no later; a scoped token creates no organization
    and revokes no other token of its account."""
    admin = make_user(node, "siteadmin", admin=True)
    mine = make_space(node, admin.token)
    scoped = make_token(node, admin.token, scope=[f"space:{mine}"])
    with node.api(scoped["token"]) as c:
        r = c.post("/api/v1/users", json={"name": "never-made-by-a-scoped-token"})
        assert r.status_code == 403, r.text
        assert c.get("/api/v1/users").status_code == 403
        r = c.post("/api/v1/orgs", json={"name": "never-an-org-of-a-scoped-token"})
        assert r.status_code == 403 and "without a scope" in r.json()["error"], r.text
        other = make_token(node, admin.token)
        r = c.delete(f"/api/v1/tokens/{other['id']}")
        assert r.status_code == 403 and "revoke itself" in r.json()["error"], r.text
        assert c.post(f"/api/v1/spaces/{mine}/sleep").status_code != 403  # its own Space

    alice = make_user(node, "alice")
    day = make_token(node, alice.token, expiresInDays=1)
    forever = make_token(node, day["token"])  # asks for no expiry
    assert forever["expiresAt"] == day["expiresAt"], forever
    longer = make_token(node, day["token"], expiresInDays=30)
    assert longer["expiresAt"] == day["expiresAt"], longer
