"""Organizations through the real huggingface_hub client: whoami, create_repo("org/name"),
list_spaces(author=org), list_organization_members, get_organization_overview, and what
renaming or deleting an organization does to its Spaces."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from huggingface_hub import HfApi
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

from tests.conftest import Node, unique
from tests.hf.conftest import STATIC_README


@dataclass(frozen=True)
class Team:
    org: str
    admin: str
    admin_token: str
    member: str
    member_token: str


@pytest.fixture(scope="module")
def team(node: Node) -> Iterator[Team]:
    org, lead, member = unique("lab"), unique("lead"), unique("student")
    tokens = {}
    with node.api() as admin:
        for name in (lead, member):
            r = admin.post("/api/v1/users", json={"name": name})
            assert r.status_code == 201, r.text
            tokens[name] = r.json()["token"]
    with node.api(tokens[lead]) as c:
        assert c.post("/api/v1/orgs", json={"name": org, "fullname": "The Lab"}).status_code == 201
        r = c.put(f"/api/v1/orgs/{org}/members/{member}", json={"role": "write"})
        assert r.status_code == 200, r.text
    yield Team(org, lead, tokens[lead], member, tokens[member])


def test_whoami_lists_organizations_with_the_role(node: Node, team: Team) -> None:
    me = HfApi(endpoint=node.url, token=team.member_token).whoami()
    assert [(o["name"], o["roleInOrg"]) for o in me["orgs"]] == [(team.org, "write")]
    lead = HfApi(endpoint=node.url, token=team.admin_token).whoami()
    assert [(o["name"], o["roleInOrg"]) for o in lead["orgs"]] == [(team.org, "admin")]


def test_org_spaces_through_the_client(node: Node, team: Team) -> None:
    hf = HfApi(endpoint=node.url, token=team.member_token)
    repo_id = f"{team.org}/{unique('demo')}"
    url = hf.create_repo(repo_id, repo_type="space", space_sdk="static", private=True)
    assert url.repo_id == repo_id
    hf.upload_file(
        path_or_fileobj=STATIC_README.format(title="org demo").encode(),
        path_in_repo="README.md",
        repo_id=repo_id,
        repo_type="space",
    )
    assert hf.space_info(repo_id).author == team.org
    listed = [s.id for s in hf.list_spaces(author=team.org)]
    assert repo_id in listed
    # the organization's admin sees it too; a stranger and an anonymous visitor do not
    lead = HfApi(endpoint=node.url, token=team.admin_token)
    assert repo_id in [s.id for s in lead.list_spaces(author=team.org)]
    anonymous = HfApi(endpoint=node.url, token=False)
    assert repo_id not in [s.id for s in anonymous.list_spaces(author=team.org)]
    with pytest.raises(RepositoryNotFoundError):
        anonymous.space_info(repo_id)


def test_members_and_overview(node: Node, team: Team) -> None:
    hf = HfApi(endpoint=node.url, token=team.member_token)
    members = {u.username: u.__dict__.get("role") for u in hf.list_organization_members(team.org)}
    assert members == {team.admin: "admin", team.member: "write"}
    overview = HfApi(endpoint=node.url, token=False).get_organization_overview(team.org)
    assert overview.name == team.org and overview.fullname == "The Lab"
    assert overview.num_users == 2
    # members are for members: a user of another team gets nothing
    with node.api() as admin:
        stranger = unique("stranger")
        token = admin.post("/api/v1/users", json={"name": stranger}).json()["token"]
    with pytest.raises(HfHubHTTPError) as err:
        list(HfApi(endpoint=node.url, token=token).list_organization_members(team.org))
    assert err.value.response.status_code == 404


def test_rename_moves_spaces_and_delete_refuses_while_it_owns_some(node: Node, team: Team) -> None:
    org = unique("course")
    hf = HfApi(endpoint=node.url, token=team.admin_token)
    with node.api(team.admin_token) as c:
        assert c.post("/api/v1/orgs", json={"name": org}).status_code == 201
    name = unique("hw")
    hf.create_repo(f"{org}/{name}", repo_type="space", space_sdk="static")
    renamed = unique("course-2026")
    with node.api(team.admin_token) as c:
        r = c.patch(f"/api/v1/orgs/{org}", json={"name": renamed})
        assert r.status_code == 200, r.text
        assert r.json()["moved"] == [f"{renamed}/{name}"]
        assert hf.space_info(f"{renamed}/{name}").author == renamed
        with pytest.raises(RepositoryNotFoundError):
            hf.space_info(f"{org}/{name}")
        r = c.delete(f"/api/v1/orgs/{renamed}")
        assert r.status_code == 409 and f"{renamed}/{name}" in r.json()["error"], r.text
        hf.delete_repo(f"{renamed}/{name}", repo_type="space")
        assert c.delete(f"/api/v1/orgs/{renamed}").status_code == 200
        assert c.get(f"/api/v1/orgs/{renamed}").status_code == 404


def test_names_are_shared_and_the_last_admin_stays(node: Node, team: Team) -> None:
    with node.api(team.admin_token) as c:
        r = c.post("/api/v1/orgs", json={"name": team.member})
        assert r.status_code == 409 and "taken by a user" in r.json()["error"], r.text
        r = c.put(f"/api/v1/orgs/{team.org}/members/{team.admin}", json={"role": "write"})
        assert r.status_code == 409 and "last admin" in r.json()["error"], r.text
        r = c.put(f"/api/v1/orgs/{team.org}/members/{team.member}", json={"role": "owner"})
        assert r.status_code == 422, r.text
