"""Sign-up by invitation link in a real browser: the invitee picks a name, gets an account and
the organization's role, is signed in and sees their first token once; a used or expired link
says so. The link is made through the API, as an admin's console or CLI would."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from spaceport.db.models import Invitation, Membership, Organization, User, utcnow
from spaceport.db.session import session_scope
from tests.conftest import Node, unique
from tests.console.conftest import CONSOLE, shot


def test_an_invitee_signs_up_joins_the_org_and_is_signed_in(
    node: Node, browser: Any, artifacts: Path
) -> None:
    org = unique("course")
    with session_scope() as session:
        session.add(Organization(name=org))
    with node.api() as admin:
        made = admin.post("/api/v1/invitations", json={"org": org, "role": "write"})
        assert made.status_code == 201, made.text
    url = made.json()["url"]
    assert url.startswith(f"{CONSOLE}/join/")

    context = browser.new_context(viewport={"width": 1360, "height": 900})
    page = context.new_page()
    page.goto(url)
    assert org in page.inner_text("main") and "write" in page.inner_text("main")
    page.fill("#join-name", org)  # an organization's name is taken
    page.click("#join button[type=submit]")
    assert "organization" in page.inner_text(".alert.err")
    name = unique("newbie")
    page.fill("#join-name", name)
    page.fill("#join-fullname", "New Bie")
    page.fill("#join-email", "newbie@example.invalid")
    shot(page, artifacts, "join", full=False)
    page.click("#join button[type=submit]")
    token = page.inner_text("#token-value").strip()
    assert token.startswith("sp_")
    assert page.inner_text(".userpill").strip().endswith(name)  # signed in
    shot(page, artifacts, "joined", full=False)
    page.goto(f"{CONSOLE}/settings/tokens")
    assert "this browser" in page.inner_text("body")
    context.close()

    with node.api(token) as c:
        me = c.get("/api/whoami-v2").json()
        assert (me["name"], me["fullname"], me["email"]) == (
            name,
            "New Bie",
            "newbie@example.invalid",
        )
    with session_scope() as session:
        user = session.scalars(select(User).where(User.name == name)).one()
        [membership] = session.scalars(select(Membership).where(Membership.user_id == user.id))
        assert (membership.org.name, membership.role) == (org, "write")

    again = browser.new_page()
    again.goto(url)
    assert "already used" in again.inner_text("#join-error")
    again.close()
    listed = {i["id"]: i for i in node.api().get("/api/v1/invitations").json()}
    assert listed[made.json()["id"]]["status"] == "used"
    assert listed[made.json()["id"]]["usedBy"] == name


def test_an_expired_invitation_link_says_so(node: Node) -> None:
    with node.api() as admin:
        made = admin.post("/api/v1/invitations", json={"days": 1}).json()
    with session_scope() as session:
        row = session.get(Invitation, made["id"])
        assert row is not None
        row.expires_at = utcnow() - timedelta(minutes=1)
    page = httpx.get(made["url"], timeout=30)
    assert page.status_code == 410 and "expired" in page.text and "admin" in page.text
