"""Organization roles over every Space route: the authorization matrix for `org/name` Spaces.

An organization (Hugging Face's roles) owns a public and a private Space, created by a
`contributor` member. Callers: `orgread` (read role), `contrib` (contributor, not the creator),
`creator` (the contributor who created them), `writer` (write role), `outsider` (no member).
What must hold (services/access.py):
- members of every role read the private Space; to outsiders it does not exist (404);
- every mutation is refused to `orgread`, `contrib` and `outsider`, with a message that names
  the role that is missing, and changes nothing;
- `writer` and `creator` change them (settings, variables, sleep time, a git push), and a
  contributor creates Spaces in the organization while a reader cannot.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Node, unique
from tests.safety.test_authz_matrix import (
    MATRIX,
    World,
    call,
    hidden,
    refused,
    settings_of,
    text,
)

pytestmark = pytest.mark.slow
ROLES = {"orgread": "read", "contrib": "contributor", "creator": "contributor", "writer": "write"}


@pytest.fixture(scope="module")
def org_world(node: Node) -> Iterator[World]:
    org = unique("lab")
    names = {who: unique(who) for who in (*ROLES, "outsider", "orgadmin")}
    tokens: dict[str, str | None] = {"anonymous": None}
    with node.api() as admin:
        for who, name in names.items():
            r = admin.post("/api/v1/users", json={"name": name})
            assert r.status_code == 201, r.text
            tokens[who] = r.json()["token"]
    with node.api(tokens["orgadmin"]) as c:
        assert c.post("/api/v1/orgs", json={"name": org}).status_code == 201
        for who, role in ROLES.items():
            r = c.put(f"/api/v1/orgs/{org}/members/{names[who]}", json={"role": role})
            assert r.status_code == 200, r.text
    made = {}
    with node.api(tokens["creator"]) as c:
        for kind, private in (("public", False), ("private", True)):
            name = unique(f"roles-{kind}")
            r = c.post(
                "/api/repos/create",
                json={
                    "type": "space",
                    "name": name,
                    "sdk": "static",
                    "private": private,
                    "organization": org,
                },
            )
            assert r.status_code == 200, r.text
            made[kind] = f"{org}/{name}"
    yield World(
        node, org, tokens, names, made["public"], made["private"], org, org, names["outsider"]
    )
    with node.api() as admin:
        for space_id in made.values():
            admin.request(
                "DELETE",
                "/api/repos/delete",
                json={"type": "space", "name": space_id.split("/")[1], "organization": org},
            )
        admin.delete(f"/api/v1/orgs/{org}")


SPACE_ROUTES = [key for key, op in MATRIX.items() if op.kind in ("read", "write")]


@pytest.mark.parametrize(("method", "template"), SPACE_ROUTES, ids=lambda v: str(v))
def test_roles_on_space_routes(org_world: World, method: str, template: str) -> None:
    op = MATRIX[(method, template)]
    for space_id, private in ((org_world.public, False), (org_world.private, True)):
        before = settings_of(org_world, space_id)
        for who in ("orgread", "contrib", "outsider"):
            r = call(org_world, who, method, template, space_id)
            label = f"{who} {method} {template} on {space_id}: {r.status_code} {text(r)}"
            if op.kind == "read":
                if who == "outsider" and private:
                    assert hidden(r, False), label
                else:
                    assert not refused(r), label
            elif who == "outsider":
                assert r.status_code == (404 if private else 403), label
            else:
                assert r.status_code == 403, label
                role = ROLES[who]
                assert f"a {role} member of {org_world.org}" in r.json()["error"], label
        assert settings_of(org_world, space_id) == before, f"{method} {template}: it changed"


@pytest.mark.parametrize("who", ["writer", "creator"])
def test_writers_and_creators_change_org_spaces(org_world: World, who: str, tmp_path: Path) -> None:
    space_id = org_world.private
    with org_world.node.api(org_world.tokens[who]) as c:
        r = c.post(
            f"/api/spaces/{space_id}/variables", json={"key": f"BY_{who.upper()}", "value": "1"}
        )
        assert r.status_code == 200, r.text
        r = c.post(f"/api/spaces/{space_id}/sleeptime", json={"seconds": 3600})
        assert r.status_code == 200, r.text
        r = c.put(f"/api/spaces/{space_id}/settings", json={"private": True})
        assert r.status_code == 200, r.text
        r = c.request(
            "DELETE", f"/api/spaces/{space_id}/variables", json={"key": f"BY_{who.upper()}"}
        )
        assert r.status_code == 200, r.text
    (tmp_path / "index.html").write_text(f"<p>pushed by {who}</p>")
    (tmp_path / "README.md").write_text("---\nsdk: static\n---\n")
    out = org_world.node.push(tmp_path, space_id, org_world.tokens[who])
    assert out.returncode == 0, out.stderr


def test_git_push_refused_to_readers_and_contributors(org_world: World, tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("<p>not allowed</p>")
    for who, shown in (("orgread", "a read member"), ("contrib", "a contributor member")):
        out = org_world.node.push(tmp_path, org_world.public, org_world.tokens[who])
        assert out.returncode != 0, who
        assert shown in out.stderr and "write or admin role" in out.stderr, out.stderr
    out = org_world.node.push(tmp_path, org_world.private, org_world.tokens["outsider"])
    assert out.returncode != 0 and "not found" in out.stderr.lower(), out.stderr


def test_who_creates_spaces_in_an_organization(org_world: World) -> None:
    body = {"type": "space", "sdk": "static", "organization": org_world.org}
    with org_world.node.api(org_world.tokens["orgread"]) as c:
        r = c.post("/api/repos/create", json={**body, "name": unique("by-reader")})
        assert r.status_code == 403, r.text
        assert "creating Spaces needs contributor" in r.json()["error"]
    with org_world.node.api(org_world.tokens["outsider"]) as c:
        r = c.post("/api/repos/create", json={**body, "name": unique("by-outsider")})
        assert r.status_code == 403 and "cannot create Spaces" in r.json()["error"], r.text
    name = unique("by-contrib")
    with org_world.node.api(org_world.tokens["contrib"]) as c:
        r = c.post("/api/repos/create", json={**body, "name": name})
        assert r.status_code == 200, r.text
        # the creator changes their own Space; another contributor's stay out of reach
        r = c.post(f"/api/spaces/{org_world.org}/{name}/sleeptime", json={"seconds": 3600})
        assert r.status_code == 200, r.text
        r = c.request(
            "DELETE",
            "/api/repos/delete",
            json={"type": "space", "name": name, "organization": org_world.org},
        )
        assert r.status_code == 200, r.text


def test_members_see_private_org_spaces_in_listings(org_world: World) -> None:
    for who, sees in (("orgread", True), ("contrib", True), ("outsider", False)):
        with org_world.node.api(org_world.tokens[who]) as c:
            for path in ("/api/spaces", "/api/v1/spaces"):
                listing = c.get(path, params={"author": org_world.org}).text
                assert (org_world.private in listing) == sees, f"{who} {path}"
                assert org_world.public in listing, f"{who} {path}"
