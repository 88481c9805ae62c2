"""The audit log through the real API and git: every change a person makes to a Space lands in
it with who, from where and what (secrets by name, never by value), and each log is read only
by those it belongs to (a Space's by who may change it, an organization's by its admins, the
whole log by site admins), page by page or as JSON lines.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from spaceport.examples import remote_url
from tests.conftest import EXAMPLES, Node, unique

SECRET = "s3cr3t-" + uuid.uuid4().hex  # a value that must appear in no entry, ever
NDJSON = (
    json.dumps({"key": "header", "value": {"summary": "audit probe"}})
    + "\n"
    + json.dumps(
        {"key": "file", "value": {"path": "probe.txt", "content": "eA==", "encoding": "base64"}}
    )
    + "\n"
)


@dataclass
class People:
    alice: str  # a write token of alice, who owns the Space
    alice_name: str
    reader: str  # alice's read-only token
    bob: str  # another user's write token
    bob_name: str


@pytest.fixture(scope="module")
def people(node: Node) -> People:
    alice, bob = unique("alice"), unique("bob")
    made = {}
    with node.api() as admin:
        for name in (alice, bob):
            r = admin.post("/api/v1/users", json={"name": name})
            assert r.status_code == 201, r.text
            made[name] = r.json()["token"]
    with node.api(made[alice]) as c:
        r = c.post("/api/v1/tokens", json={"name": "read-only", "role": "read"})
        assert r.status_code == 201, r.text
    return People(made[alice], alice, r.json()["token"], made[bob], bob)


@pytest.fixture(scope="module")
def space(node: Node, people: People) -> Iterator[str]:
    """alice's Space, changed every way an owner can while nothing needs to run."""
    name = unique("audited")
    space_id = f"{people.alice_name}/{name}"
    base = f"/api/spaces/{space_id}"
    with node.api(people.alice) as c:
        r = c.post(
            "/api/repos/create",
            json={
                "type": "space",
                "name": name,
                "sdk": "static",
                "secrets": [{"key": "API_KEY", "value": SECRET}],
                "variables": [{"key": "MODEL", "value": "tiny"}],
            },
        )
        assert r.status_code == 200, r.text
        for method, path, body in (
            ("POST", f"{base}/secrets", {"key": "OTHER", "value": SECRET}),
            ("DELETE", f"{base}/secrets", {"key": "OTHER"}),
            ("POST", f"{base}/variables", {"key": "COLOR", "value": "blue"}),
            ("DELETE", f"{base}/variables", {"key": "COLOR"}),
            ("POST", f"{base}/sleeptime", {"seconds": 3600}),
            ("POST", f"{base}/hardware", {"flavor": "cpu-upgrade"}),
            ("PUT", f"{base}/settings", {"private": True}),
            ("POST", f"/api/v1/spaces/{space_id}/storage", {"tier": "small"}),
            ("POST", f"/api/v1/spaces/{space_id}/domains", {"domain": f"{name}.example.test"}),
            ("DELETE", f"/api/v1/spaces/{space_id}/domains/{name}.example.test", None),
        ):
            r = c.request(method, path, json=body)
            assert r.status_code == 200, f"{method} {path}: {r.status_code} {r.text}"
        r = c.post(
            f"{base}/commit/main",
            content=NDJSON,
            headers={"Content-Type": "application/x-ndjson"},
        )
        assert r.status_code == 200, r.text
    pushed = node.push(EXAMPLES / "static-site", space_id, people.alice)
    assert pushed.returncode == 0, pushed.stderr
    work = node.data / "pushes" / unique("branch")  # and a branch beside main
    remote = remote_url(node.settings, space_id, people.alice)
    for argv, cwd in (
        (["git", "clone", "-q", remote, str(work)], None),
        (["git", "push", "-q", "origin", "main:refs/heads/feature"], work),
    ):
        out = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
    with node.api(people.alice) as c:
        for path in (f"{base}/restart?factory=true", f"{base}/pause"):
            r = c.post(path)
            assert r.status_code == 200, f"{path}: {r.status_code} {r.text}"
    yield space_id
    with node.api() as admin:
        body = {"type": "space", "name": name, "organization": people.alice_name}
        admin.request("DELETE", "/api/repos/delete", json=body)


def log_of(node: Node, token: str, path: str, **params: Any) -> list[dict[str, Any]]:
    with node.api(token) as c:
        r = c.get(path, params={"limit": 1000, **params})
    assert r.status_code == 200, r.text
    return list(r.json())


def test_every_change_to_a_space_is_recorded(node: Node, people: People, space: str) -> None:
    entries = log_of(node, people.alice, f"/api/v1/spaces/{space}/audit")
    actions = [e["action"] for e in entries]
    assert actions == [
        "space.pause",
        "space.rebuild",
        "space.push",
        "space.push",
        "space.commit",
        "space.domain.remove",
        "space.domain.add",
        "space.storage",
        "space.settings",
        "space.hardware",
        "space.sleeptime",
        "space.variable.delete",
        "space.variable.set",
        "space.secret.delete",
        "space.secret.set",
        "space.create",
    ], actions
    for e in entries:
        assert e["actor"] == people.alice_name, e
        assert e["space"] == space and e["namespace"] == people.alice_name, e
        assert e["ip"] == "127.0.0.1", e  # the tests reach the node on loopback
        assert e["at"].endswith("Z"), e
    by_action = {e["action"]: e for e in entries}
    assert by_action["space.create"]["details"]["secrets"] == ["API_KEY"]
    assert by_action["space.secret.set"]["details"] == {"key": "OTHER"}
    assert by_action["space.settings"]["details"] == {"private": True}
    assert by_action["space.hardware"]["details"]["flavor"] == "cpu-upgrade"
    branch, push = (e["details"] for e in entries if e["action"] == "space.push")
    commit = by_action["space.commit"]["details"]
    assert push["ref"] == "main" and push["before"] == commit["after"], (push, commit)
    assert branch == {"ref": "feature", "before": None, "after": push["after"]}, branch
    assert by_action["space.push"]["token"] == "first token"  # which of alice's tokens
    with node.api() as admin:  # the whole log, as JSON lines: the secret is in no entry
        everything = admin.get("/api/v1/audit", params={"format": "jsonl"}).text
    assert SECRET not in everything
    assert f'"space":"{space}"' in everything


def test_moves_copies_and_deletions_are_recorded(node: Node, people: People, space: str) -> None:
    copy, moved = f"{space}-copy", f"{space}-moved"
    with node.api(people.alice) as c:
        r = c.post(f"/api/spaces/{space}/duplicate", json={"repository": copy})
        assert r.status_code == 200, r.text
        r = c.post("/api/repos/move", json={"fromRepo": copy, "toRepo": moved, "type": "space"})
        assert r.status_code == 200, r.text
        body = {"type": "space", "name": moved.split("/")[1]}
        assert c.request("DELETE", "/api/repos/delete", json=body).status_code == 200
    found = log_of(node, node.token, "/api/v1/audit", actor=people.alice_name)
    mine = [(e["action"], e["space"], e["target"]) for e in found if e["space"] in (copy, moved)]
    assert mine[:3] == [
        ("space.delete", moved, moved),
        ("space.move", moved, copy),
        ("space.duplicate", copy, copy),
    ], mine
    dup = next(e for e in found if e["action"] == "space.duplicate" and e["space"] == copy)
    assert dup["details"]["source"] == space


def test_a_renamed_space_keeps_its_history(node: Node, people: People) -> None:
    """A Space's log follows it across renames; a new Space under its old name starts afresh."""
    first, second = unique("before-rename"), unique("after-rename")
    old_id, new_id = f"{people.alice_name}/{first}", f"{people.alice_name}/{second}"
    with node.api(people.alice) as c:
        r = c.post("/api/repos/create", json={"type": "space", "name": first, "sdk": "static"})
        assert r.status_code == 200, r.text
        r = c.post(f"/api/spaces/{old_id}/variables", json={"key": "BEFORE", "value": "1"})
        assert r.status_code == 200, r.text
        r = c.post("/api/repos/move", json={"fromRepo": old_id, "toRepo": new_id, "type": "space"})
        assert r.status_code == 200, r.text
        r = c.post(f"/api/spaces/{new_id}/variables", json={"key": "AFTER", "value": "1"})
        assert r.status_code == 200, r.text
        r = c.post("/api/repos/create", json={"type": "space", "name": first, "sdk": "static"})
        assert r.status_code == 200, r.text  # another Space takes the old name
        r = c.post(f"/api/spaces/{old_id}/variables", json={"key": "NEWCOMER", "value": "1"})
        assert r.status_code == 200, r.text
    try:
        moved = log_of(node, people.alice, f"/api/v1/spaces/{new_id}/audit")
        keys = [e["details"].get("key") for e in moved if e["action"] == "space.variable.set"]
        assert keys == ["AFTER", "BEFORE"], moved  # newest first, its old name's included
        assert any(e["action"] == "space.move" for e in moved)
        assert any(e["action"] == "space.create" and e["space"] == old_id for e in moved)
        newcomer = log_of(node, people.alice, f"/api/v1/spaces/{old_id}/audit")
        keys = [e["details"].get("key") for e in newcomer if e["action"] == "space.variable.set"]
        assert keys == ["NEWCOMER"], newcomer
    finally:
        with node.api(people.alice) as c:
            for name in (first, second):
                c.request("DELETE", "/api/repos/delete", json={"type": "space", "name": name})


def test_accounts_and_tokens_are_recorded(node: Node, people: People) -> None:
    with node.api(people.alice) as c:
        r = c.post("/api/v1/tokens", json={"name": "audit-ci", "role": "write"})
        assert r.status_code == 201, r.text
        assert c.delete(f"/api/v1/tokens/{r.json()['id']}").status_code == 200
    entries = log_of(node, node.token, "/api/v1/audit", action="token")
    tokens = [
        (e["action"], e["actor"])
        for e in entries
        if e["target"] == people.alice_name and e["details"].get("token") == "audit-ci"
    ]
    assert tokens == [("token.revoke", people.alice_name), ("token.create", people.alice_name)]
    made = log_of(node, node.token, "/api/v1/audit", action="user.create", actor="admin")
    assert {e["target"] for e in made} >= {people.alice_name, people.bob_name}


def test_who_may_read_a_space_log(node: Node, people: People, space: str) -> None:
    """The Space is private now: bob may not learn it exists, alice's read token may not read
    the log of what she may not change, the whole log is the admins'."""
    path = f"/api/v1/spaces/{space}/audit"
    for token, status in ((people.bob, 404), (people.reader, 403), (None, 404)):
        with node.api(token) as c:
            r = c.get(path)
        assert r.status_code == status, f"{r.status_code} {r.text}"
    assert log_of(node, node.token, path)  # site admins read every Space's
    for token in (people.alice, people.reader, people.bob):
        with node.api(token) as c:
            assert c.get("/api/v1/audit").status_code == 403


def test_pages_and_json_lines(node: Node, people: People, space: str) -> None:
    path = f"/api/v1/spaces/{space}/audit"
    everything = log_of(node, people.alice, path)
    seen: list[int] = []
    url: str | None = f"{node.url}{path}?limit=4"
    with node.api(people.alice) as c:
        while url:
            r = c.get(url)
            assert r.status_code == 200, r.text
            seen += [e["id"] for e in r.json()]
            url = r.links.get("next", {}).get("url")
            if url:  # the Link is on the address the client used
                assert url.startswith(node.url), url
        assert seen == [e["id"] for e in everything] and len(seen) > 4
        assert seen == sorted(seen, reverse=True)  # newest first
        r = c.get(path, params={"format": "jsonl"})
        assert r.headers["content-type"].startswith("application/x-ndjson")
        lines = [json.loads(line) for line in r.text.splitlines()]
        assert lines == everything
        r = c.get(path, params={"format": "jsonl", "limit": 2})
        assert len(r.text.splitlines()) == 2 and "next" in r.links
        assert c.get(path, params={"action": "space.secret"}).json()[0]["action"] == (
            "space.secret.delete"
        )
        r = c.get(path, params={"since": "yesterday"})
        assert r.status_code == 400 and "since must be" in r.json()["error"]
        assert c.get(path, params={"since": "1h"}).json() == everything
        assert c.get(path, params={"until": "1h"}).json() == []


def test_an_organizations_log_is_its_admins(node: Node, people: People) -> None:
    """bob administers the organization, alice writes in it: bob reads its log (his own changes
    to it and alice's Space), alice gets a 403, a stranger a 404 (as for an organization that
    does not exist)."""
    org, name = unique("lab"), unique("org-space")
    with node.api(people.bob) as c:
        assert c.post("/api/v1/orgs", json={"name": org}).status_code == 201
        r = c.put(f"/api/v1/orgs/{org}/members/{people.alice_name}", json={"role": "write"})
        assert r.status_code == 200, r.text
    with node.api(people.alice) as c:
        r = c.post(
            "/api/repos/create",
            json={"type": "space", "name": name, "sdk": "static", "organization": org},
        )
        assert r.status_code == 200, r.text
    try:
        entries = log_of(node, people.bob, f"/api/v1/orgs/{org}/audit")
        assert [(e["action"], e["actor"]) for e in entries] == [
            ("space.create", people.alice_name),
            ("org.member.add", people.bob_name),
            ("org.create", people.bob_name),
        ], entries
        assert entries[0]["space"] == f"{org}/{name}" and entries[0]["namespace"] == org
        assert log_of(node, node.token, f"/api/v1/orgs/{org}/audit") == entries
        with node.api(people.alice) as c:
            member = c.get(f"/api/v1/orgs/{org}/audit")
            missing = c.get(f"/api/v1/orgs/{unique('nolab')}/audit")
        assert member.status_code == 403 and "admins" in member.json()["error"], member.text
        assert missing.status_code == 404, missing.text
        with node.api(people.reader) as c:  # alice again, with a read token: still no admin
            assert c.get(f"/api/v1/orgs/{org}/audit").status_code == 403
        with node.api() as admin:
            assert admin.get(f"/api/v1/orgs/{unique('nolab')}/audit").status_code == 404
    finally:
        with node.api() as admin:
            body = {"type": "space", "name": name, "organization": org}
            admin.request("DELETE", "/api/repos/delete", json=body)
            admin.delete(f"/api/v1/orgs/{org}")


def test_console_sign_in_and_out_are_recorded(node: Node, people: People) -> None:
    with httpx.Client(base_url=node.url, timeout=30) as browser:
        form = browser.get("/login")
        csrf = form.text.split('name="csrf_token" value="')[1].split('"')[0]
        r = browser.post("/login", data={"token": people.bob, "csrf_token": csrf})
        assert r.status_code == 303, r.text
        page = browser.get("/")
        csrf = page.text.split('name="csrf-token" content="')[1].split('"')[0]
        assert browser.post("/logout", data={"csrf_token": csrf}).status_code == 303
    entries = log_of(node, node.token, "/api/v1/audit", actor=people.bob_name, action="user")
    assert [e["action"] for e in entries][:2] == ["user.signout", "user.signin"], entries
    assert all(e["ip"] == "127.0.0.1" for e in entries[:2])
