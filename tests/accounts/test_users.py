"""An administrator's hold on accounts: deactivate and activate, delete with the user's Spaces
moved or (confirmed) deleted, never lost silently; user and organization names never clash.
Over the real API of the session's node; organizations are made in the database (their own API
is tested with them)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from spaceport.db.models import AuditEvent, Membership, Organization, User
from spaceport.db.session import session_scope
from tests.accounts.conftest import make_space, make_user
from tests.conftest import Node, unique


def make_org(name: str, members: dict[str, str]) -> str:
    with session_scope() as session:
        org = Organization(name=name)
        session.add(org)
        for user_name, role in members.items():
            user = session.scalars(select(User).where(User.name == user_name)).one()
            session.add(Membership(org=org, user=user, role=role))
    return name


def audit_of(target: str, action: str) -> list[dict[str, Any]]:
    with session_scope() as session:
        rows = session.scalars(
            select(AuditEvent).where(AuditEvent.target == target, AuditEvent.action == action)
        )
        return [{"actor": r.actor, "ip": r.ip, **r.details} for r in rows]


def test_deactivating_stops_a_user_at_once_and_activating_lets_them_back(node: Node) -> None:
    carol = make_user(node, "carol")
    space = make_space(node, carol.token)
    with node.api() as admin:
        r = admin.post(f"/api/v1/users/{carol.name}/deactivate")
        assert r.status_code == 200 and r.json()["deactivatedAt"]
    with node.api(carol.token) as c:
        assert c.get("/api/whoami-v2").status_code == 401
    with node.api() as admin:
        assert admin.get(f"/api/spaces/{space}").status_code == 200  # their Space stays
        listed = {u["name"]: u for u in admin.get("/api/v1/users").json()}
        assert listed[carol.name]["deactivatedAt"]
        assert admin.post(f"/api/v1/users/{carol.name}/activate").status_code == 200
        me = admin.post("/api/v1/users/admin/deactivate")
        assert me.status_code == 409 and "yourself" in me.json()["error"]
    with node.api(carol.token) as c:
        assert c.get("/api/whoami-v2").json()["name"] == carol.name
        # Only administrators hold this power.
        r = c.post(f"/api/v1/users/{carol.name}/deactivate")
        assert r.status_code == 403
    [entry] = audit_of(carol.name, "user.deactivate")
    assert entry["actor"] == "admin" and entry["ip"]
    assert len(audit_of(carol.name, "user.activate")) == 1


def test_deleting_a_user_who_owns_spaces_needs_a_place_for_them(node: Node) -> None:
    dave, erin = make_user(node, "dave"), make_user(node, "erin")
    spaces = [make_space(node, dave.token), make_space(node, dave.token, private=True)]
    with node.api() as admin:
        refused = admin.delete(f"/api/v1/users/{dave.name}")
        assert refused.status_code == 409
        assert sorted(refused.json()["spaces"]) == sorted(spaces)
        assert "transferTo" in refused.json()["error"]
        wrong = admin.delete(f"/api/v1/users/{dave.name}", params={"deleteSpaces": "yes"})
        assert wrong.status_code == 400 and dave.name in wrong.json()["error"]
        nobody = admin.delete(f"/api/v1/users/{dave.name}", params={"transferTo": "no-one-x"})
        assert nobody.status_code == 404
        for space_id in spaces:  # nothing was lost on the way
            assert admin.get(f"/api/spaces/{space_id}").status_code == 200

        done = admin.delete(f"/api/v1/users/{dave.name}", params={"transferTo": erin.name})
        assert done.status_code == 200, done.text
        moved = {s: f"{erin.name}/{s.split('/')[1]}" for s in spaces}
        assert done.json()["moved"] == moved
        for old, new in moved.items():
            assert admin.get(f"/api/spaces/{old}").status_code == 404
            assert admin.get(f"/api/spaces/{new}").status_code == 200
        assert dave.name not in {u["name"] for u in admin.get("/api/v1/users").json()}
    with node.api(dave.token) as c:
        assert c.get("/api/whoami-v2").status_code == 401
    with node.api(erin.token) as c:  # the new owner has them, private one included
        assert c.get(f"/api/spaces/{moved[spaces[1]]}").status_code == 200
    [entry] = audit_of(dave.name, "user.delete")
    assert entry["moved"] == moved and entry["movedTo"] == erin.name


def test_deleting_a_user_with_their_spaces_is_confirmed_by_their_name(node: Node) -> None:
    frank = make_user(node, "frank")
    space = make_space(node, frank.token)
    with node.api() as admin:
        r = admin.delete(f"/api/v1/users/{frank.name}", params={"deleteSpaces": frank.name})
        assert r.status_code == 200, r.text
        assert r.json()["deletedSpaces"] == [space]
        assert admin.get(f"/api/spaces/{space}").status_code == 404
    [entry] = audit_of(frank.name, "user.delete")
    assert entry["deleted"] == [space]


def test_the_last_admin_of_an_organization_is_not_deleted(node: Node) -> None:
    gina, hank = make_user(node, "gina"), make_user(node, "hank")
    org = make_org(unique("lab"), {gina.name: "admin", hank.name: "write"})
    with node.api() as admin:
        r = admin.delete(f"/api/v1/users/{gina.name}")
        assert r.status_code == 409 and org in r.json()["error"]
        assert gina.name in {u["name"] for u in admin.get("/api/v1/users").json()}
        # A write member may go: the organization keeps its admin.
        assert admin.delete(f"/api/v1/users/{hank.name}").status_code == 200


def test_user_and_organization_names_share_one_namespace(node: Node) -> None:
    org = make_org(unique("org"), {})
    with node.api() as admin:
        r = admin.post("/api/v1/users", json={"name": org})
        assert r.status_code == 409 and "organization" in r.json()["error"]
