"""Invitation links over the API: who may make them (site admins; an organization's admins for
their organization), what they list, revoking one. The sign-up itself, in a browser:
tests/console/test_console_join.py."""

from __future__ import annotations

import httpx

from tests.accounts.conftest import make_user
from tests.accounts.test_users import audit_of, make_org
from tests.conftest import Node, unique


def test_admins_and_org_admins_invite_others_do_not(node: Node) -> None:
    boss, member = make_user(node, "boss"), make_user(node, "member")
    org = make_org(unique("team"), {boss.name: "admin", member.name: "write"})
    other = make_org(unique("other"), {})
    with node.api() as admin:
        plain = admin.post("/api/v1/invitations", json={"days": 2})
        assert plain.status_code == 201, plain.text
        assert plain.json()["url"].startswith(f"{node.settings.url}/join/")
        assert plain.json()["org"] is None and plain.json()["status"] == "pending"
    with node.api(boss.token) as c:
        mine = c.post("/api/v1/invitations", json={"org": org, "role": "contributor"})
        assert mine.status_code == 201, mine.text
        assert (mine.json()["org"], mine.json()["role"]) == (org, "contributor")
        for body in ({}, {"org": other}):  # not the site, not another organization
            assert c.post("/api/v1/invitations", json=body).status_code == 403
        bad = c.post("/api/v1/invitations", json={"org": org, "role": "owner"})
        assert bad.status_code == 400 and "contributor" in bad.json()["error"]
        listed = [i["id"] for i in c.get("/api/v1/invitations").json()]
        assert listed == [mine.json()["id"]]  # theirs only, not the site admin's
    with node.api(member.token) as c:
        assert c.post("/api/v1/invitations", json={"org": org}).status_code == 403
        assert c.get("/api/v1/invitations").status_code == 403
    with node.api() as admin:
        ids = [i["id"] for i in admin.get("/api/v1/invitations").json()]
        assert {plain.json()["id"], mine.json()["id"]} <= set(ids)
    assert audit_of(f"invitation {mine.json()['id']}", "user.invite")[0]["actor"] == boss.name


def test_a_revoked_invitation_link_says_so(node: Node) -> None:
    with node.api() as admin:
        made = admin.post("/api/v1/invitations", json={}).json()
        page = httpx.get(made["url"], timeout=30)
        assert page.status_code == 200 and "Create your account" in page.text
        assert admin.delete(f"/api/v1/invitations/{made['id']}").status_code == 200
        assert admin.delete(f"/api/v1/invitations/{made['id']}").status_code == 404
    page = httpx.get(made["url"], timeout=30)
    assert page.status_code == 410 and "not valid" in page.text


def test_a_link_is_worth_what_its_maker_may_still_do(node: Node) -> None:
    """An organization admin's links stop working once they are no longer its admin."""
    boss, deputy = make_user(node, "boss"), make_user(node, "deputy")
    org = make_org(unique("team"), {boss.name: "admin", deputy.name: "admin"})
    with node.api(boss.token) as c:
        made = c.post("/api/v1/invitations", json={"org": org, "role": "admin"}).json()
    assert httpx.get(made["url"], timeout=30).status_code == 200
    with node.api(deputy.token) as c:
        r = c.put(f"/api/v1/orgs/{org}/members/{boss.name}", json={"role": "read"})
        assert r.status_code == 200, r.text
    page = httpx.get(made["url"], timeout=30)
    assert page.status_code == 410 and "no longer works" in page.text, page.text[-400:]
