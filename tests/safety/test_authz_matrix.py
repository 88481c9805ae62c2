"""The authorization matrix: every route of the published API, called by five principals.

Principals: anonymous, `reader` (the owner's read-only token), `owner` (a write token),
`other` (another user's write token), `admin`. Targets: the owner's public Space and private
Space. The table below classifies every operation in `/api/v1/openapi.json`; a route added
without a row fails `test_every_route_is_in_the_matrix`, so none escapes the check.

What must hold (services/access.py is the one policy):
- reads of a private Space: 404 (RepoNotFound) to `other` and anonymous (401 allowed), never a
  hint that it exists; the owner's tokens and admins read it;
- every mutation: refused to anonymous (401), `reader` (403) and `other` (403 on a public Space,
  404 on a private one); refusals change nothing (the Space's settings are compared);
- admin-only routes: 403 to every non-admin token, 401 to anonymous.
The owner's and the admin's own mutations are exercised by the feature tests (tests/hf, cli,
console); here they must at least not be refused.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.conftest import Node, unique

pytestmark = pytest.mark.slow

SPACE = "/{owner}/{name}"
NDJSON = (
    json.dumps({"key": "header", "value": {"summary": "authz probe"}})
    + "\n"
    + json.dumps(
        {"key": "file", "value": {"path": "probe.txt", "content": "eA==", "encoding": "base64"}}
    )
    + "\n"
)


@dataclass(frozen=True)
class Op:
    kind: str  # read | write | dup | admin | user | anyone | create | repo_write | inviter | ...
    body: Any = None
    ndjson: bool = False


# (METHOD, path template) -> what it is. `{revision}` is main, `{path}` README.md.
MATRIX: dict[tuple[str, str], Op] = {
    ("GET", "/api/v1/health"): Op("anyone"),
    ("POST", "/api/validate-yaml"): Op("anyone", {"content": "title: x\n", "repoType": "space"}),
    ("GET", "/api/v1/app-access/start"): Op("anyone"),
    ("GET", "/api/v1/metrics"): Op("anyone"),
    ("GET", "/api/spaces"): Op("anyone"),
    ("GET", "/api/v1/spaces"): Op("anyone"),
    ("GET", "/api/whoami-v2"): Op("user"),
    ("GET", "/api/v1/tokens"): Op("user"),
    ("POST", "/api/v1/tokens"): Op("user_write", {"name": "authz", "role": "read"}),
    ("DELETE", "/api/v1/tokens/{token_id}"): Op("user_write"),
    ("GET", "/api/v1/hardware"): Op("user"),
    ("GET", "/api/v1/users"): Op("admin"),
    ("POST", "/api/v1/users"): Op("admin", {"name": "authz-never-made"}),
    ("POST", "/api/v1/users/{name}/deactivate"): Op("admin"),  # {name}: no such user
    ("POST", "/api/v1/users/{name}/activate"): Op("admin"),
    ("DELETE", "/api/v1/users/{name}"): Op("admin"),
    # `inviter`: site admins and organization admins (the owner, `reader`'s user, is one of
    # the world's organization; `other` is none); changes need a write token.
    ("GET", "/api/v1/invitations"): Op("inviter"),
    ("POST", "/api/v1/invitations"): Op("inviter", {"days": 1}),
    ("DELETE", "/api/v1/invitations/{invitation_id}"): Op("inviter"),
    ("GET", "/api/v1/admin/overview"): Op("admin"),
    ("GET", "/api/v1/admin/history"): Op("admin"),
    ("GET", "/api/v1/nodes"): Op("admin"),
    ("POST", "/api/v1/nodes/{name}/availability"): Op("admin", {"availability": "active"}),
    ("GET", "/api/v1/gpus"): Op("user"),  # private holders show as busy, unnamed
    ("GET", "/api/v1/gpus/shared"): Op("user"),  # the same for the shared pool's calls
    # Organizations: `org_member` routes need membership (others: 404, as a private Space);
    # `org_admin` ones its admin role. The world's organization has the owner as its admin.
    ("GET", "/api/v1/orgs"): Op("user"),
    ("POST", "/api/v1/orgs"): Op("user_write", {"name": "authz-org-made"}),
    ("GET", "/api/v1/orgs/{org}"): Op("org_member"),
    ("PATCH", "/api/v1/orgs/{org}"): Op("org_admin", {"fullname": "Authz Lab"}),
    ("DELETE", "/api/v1/orgs/{org}"): Op("org_admin"),
    ("GET", "/api/v1/orgs/{org}/members"): Op("org_member"),
    ("PUT", "/api/v1/orgs/{org}/members/{user}"): Op("org_admin", {"role": "read"}),
    ("DELETE", "/api/v1/orgs/{org}/members/{user}"): Op("org_admin"),
    ("GET", "/api/organizations/{org}/overview"): Op("anyone"),
    ("GET", "/api/organizations/{org}/members"): Op("org_member"),
    ("GET", "/api/v1/quotas"): Op("admin"),
    # The owner's quota: its user (any token), its organization's members, admins; not others.
    ("GET", "/api/v1/quotas/{namespace}"): Op("namespace"),
    ("PUT", "/api/v1/quotas/{namespace}"): Op("admin", {"spaces": None}),
    ("POST", "/api/repos/create"): Op("create"),
    ("DELETE", "/api/repos/delete"): Op("repo_write"),
    ("POST", "/api/repos/move"): Op("repo_write"),
    ("GET", "/api/spaces" + SPACE): Op("read"),
    ("GET", "/api/spaces" + SPACE + "/runtime"): Op("read"),
    ("GET", "/api/v1/spaces" + SPACE + "/metrics/history"): Op("read"),
    ("GET", "/api/spaces" + SPACE + "/logs/build"): Op("read"),
    ("GET", "/api/spaces" + SPACE + "/logs/run"): Op("read"),
    ("GET", "/api/spaces" + SPACE + "/tree/{revision}"): Op("read"),
    ("GET", "/api/spaces" + SPACE + "/tree/{revision}/{path}"): Op("read"),
    ("POST", "/api/spaces" + SPACE + "/paths-info/{revision}"): Op(
        "read", {"paths": ["README.md"]}
    ),
    ("HEAD", "/spaces" + SPACE + "/resolve/{revision}/{path}"): Op("read"),
    ("GET", "/spaces" + SPACE + "/resolve/{revision}/{path}"): Op("read"),
    ("GET", "/api/spaces" + SPACE + "/revision/{revision}"): Op("read"),
    ("GET", "/api/spaces" + SPACE + "/refs"): Op("read"),
    ("GET", "/api/spaces" + SPACE + "/commits/{revision}"): Op("read"),
    ("GET", "/api/v1/spaces" + SPACE): Op("read"),
    ("GET", "/api/v1/spaces" + SPACE + "/files"): Op("read"),
    ("GET", "/api/v1/spaces" + SPACE + "/files/{path}"): Op("read"),
    ("GET", "/api/v1/spaces" + SPACE + "/embed"): Op("read"),
    ("POST", "/api/spaces" + SPACE + "/duplicate"): Op("dup"),
    ("PUT", "/api/spaces" + SPACE + "/settings"): Op("write", {"private": False}),
    (
        "POST",
        "/api/spaces" + SPACE + "/preupload/{revision}",
    ): Op("write", {"files": [{"path": "probe.txt", "size": 1, "sample": "eA=="}]}),
    ("POST", "/api/spaces" + SPACE + "/commit/{revision}"): Op("write", NDJSON, ndjson=True),
    ("POST", "/api/v1/spaces" + SPACE + "/restart"): Op("write"),
    ("POST", "/api/spaces" + SPACE + "/restart"): Op("write"),
    ("POST", "/api/v1/spaces" + SPACE + "/pause"): Op("write"),
    ("POST", "/api/spaces" + SPACE + "/pause"): Op("write"),
    ("POST", "/api/spaces" + SPACE + "/hardware"): Op("write", {"flavor": "cpu-upgrade"}),
    ("POST", "/api/spaces" + SPACE + "/sleeptime"): Op("write", {"seconds": 7200}),
    ("GET", "/api/spaces" + SPACE + "/secrets"): Op("write"),
    ("POST", "/api/spaces" + SPACE + "/secrets"): Op("write", {"key": "AUTHZ", "value": "s"}),
    ("DELETE", "/api/spaces" + SPACE + "/secrets"): Op("write", {"key": "AUTHZ"}),
    ("GET", "/api/spaces" + SPACE + "/variables"): Op("write"),
    ("POST", "/api/spaces" + SPACE + "/variables"): Op("write", {"key": "AUTHZ", "value": "v"}),
    ("DELETE", "/api/spaces" + SPACE + "/variables"): Op("write", {"key": "AUTHZ"}),
    ("POST", "/api/v1/spaces" + SPACE + "/storage"): Op("write", {"tier": "small"}),
    ("DELETE", "/api/v1/spaces" + SPACE + "/storage"): Op("write"),
    ("POST", "/api/v1/spaces" + SPACE + "/storage/move"): Op("write", {"node": "node2"}),
    ("POST", "/api/spaces" + SPACE + "/storage"): Op("write", {"tier": "small"}),
    ("DELETE", "/api/spaces" + SPACE + "/storage"): Op("write"),
    ("GET", "/api/v1/spaces" + SPACE + "/domains"): Op("write"),
    ("POST", "/api/v1/spaces" + SPACE + "/domains"): Op("write", {"domain": "authz.example.test"}),
    ("DELETE", "/api/v1/spaces" + SPACE + "/domains/{domain}"): Op("write"),
    ("POST", "/api/v1/spaces" + SPACE + "/stop"): Op("write"),
    ("POST", "/api/v1/spaces" + SPACE + "/start"): Op("write"),
    # What a visitor's request does to a sleeping Space: anyone who can see it may.
    ("POST", "/api/v1/spaces" + SPACE + "/wake"): Op("read"),
    ("POST", "/api/v1/spaces" + SPACE + "/sleep"): Op("write"),
    # The audit log: a Space's to those who may change it, an organization's to its admins
    # (the world's organization has the owner as its admin: their read token reads it too).
    ("GET", "/api/v1/spaces" + SPACE + "/audit"): Op("write"),
    ("GET", "/api/v1/orgs/{org}/audit"): Op("org_member"),
    ("GET", "/api/v1/audit"): Op("admin"),
}


@dataclass
class World:
    node: Node
    owner: str
    tokens: dict[str, str | None]  # principal -> token
    names: dict[str, str]  # principal -> user name
    public: str
    private: str
    org: str  # the owner is its admin; `other` is no member
    spare_org: str  # what `DELETE /api/v1/orgs/{org}` deletes (an admin's call succeeds)
    bystander: str  # the user the member routes add and remove


@pytest.fixture(scope="module")
def world(node: Node) -> Iterator[World]:
    owner, other, bystander = unique("alice"), unique("bob"), unique("carol")
    with node.api() as admin:
        made = {}
        for name in (owner, other, bystander):
            r = admin.post("/api/v1/users", json={"name": name})
            assert r.status_code == 201, r.text
            made[name] = r.json()["token"]
    with node.api(made[owner]) as c:
        r = c.post("/api/v1/tokens", json={"name": "read-only", "role": "read"})
        assert r.status_code == 201, r.text
        reader = r.json()["token"]
        spaces = {}
        for kind, private in (("public", False), ("private", True)):
            name = unique(f"authz-{kind}")
            r = c.post(
                "/api/repos/create",
                json={"type": "space", "name": name, "sdk": "static", "private": private},
            )
            assert r.status_code == 200, r.text
            spaces[kind] = f"{owner}/{name}"
        org, spare_org = unique("authz-lab"), unique("authz-spare")
        for name in (org, spare_org):
            assert c.post("/api/v1/orgs", json={"name": name}).status_code == 201
    yield World(
        node,
        owner,
        {
            "anonymous": None,
            "reader": reader,
            "owner": made[owner],
            "other": made[other],
            "admin": node.token,
        },
        {"anonymous": owner, "reader": owner, "owner": owner, "other": other, "admin": "admin"},
        spaces["public"],
        spaces["private"],
        org,
        spare_org,
        bystander,
    )
    with node.api() as admin:
        for name in (org, spare_org):
            admin.delete(f"/api/v1/orgs/{name}")
        for space_id in spaces.values():
            owner_name, name = space_id.split("/")
            body = {"type": "space", "name": name, "organization": owner_name}
            admin.request("DELETE", "/api/repos/delete", json=body)


def call(world: World, who: str, method: str, template: str, space_id: str) -> httpx.Response:
    owner, name = space_id.split("/")
    op = MATRIX[(method, template)]
    path = template.format(
        owner=owner,
        name=name,
        revision="main",
        path="README.md",
        token_id=999_999,
        invitation_id=999_999,
        domain="authz.example.test",
        org=world.spare_org
        if (method, template) == ("DELETE", "/api/v1/orgs/{org}")
        else world.org,
        user=world.bystander,
        namespace=owner,
    )
    kwargs: dict[str, Any] = {}
    if op.kind == "repo_write":
        target = {"type": "space", "name": name, "organization": owner}
        if template.endswith("move"):
            target = {"type": "space", "fromRepo": space_id, "toRepo": f"{space_id}-moved"}
        kwargs["json"] = target
    elif op.kind == "create":
        kwargs["json"] = {"type": "space", "name": unique("nope"), "organization": owner}
    elif op.kind == "dup":
        kwargs["json"] = {"repository": f"{world.names[who]}/{unique('dup')}"}
    elif op.ndjson:
        kwargs["content"] = op.body
        kwargs["headers"] = {"Content-Type": "application/x-ndjson"}
    elif op.body is not None:
        kwargs["json"] = op.body
    if template == "/api/v1/app-access/start":
        kwargs["params"] = {"next": "http://example.invalid/"}
    with world.node.api(world.tokens[who]) as c:
        r = c.send(c.build_request(method, path, **kwargs), stream=True)
        try:
            if "text/event-stream" not in r.headers.get("content-type", ""):
                r.read()  # a live log stream stays open: its status and headers are enough
        finally:
            r.close()
        return r


def text(r: httpx.Response) -> str:
    try:
        return r.text[:200]
    except httpx.ResponseNotRead:
        return "(a stream)"


def hidden(r: httpx.Response, anonymous: bool) -> bool:
    """The answer of a Space the caller may not see: not found (or sign in, when anonymous)."""
    if r.status_code == 404:
        return r.headers.get("x-error-code") == "RepoNotFound" or r.request.method == "HEAD"
    return anonymous and r.status_code == 401


def refused(r: httpx.Response) -> bool:
    return r.status_code in (401, 403) or (
        r.status_code == 404 and r.headers.get("x-error-code") == "RepoNotFound"
    )


def settings_of(world: World, space_id: str) -> dict[str, Any]:
    with world.node.api() as admin:
        info = admin.get(f"/api/spaces/{space_id}").json()
        runtime = admin.get(f"/api/spaces/{space_id}/runtime").json()
        variables = admin.get(f"/api/spaces/{space_id}/variables").json()
        secrets = admin.get(f"/api/spaces/{space_id}/secrets").json()
    return {
        "private": info.get("private"),
        "sha": info.get("sha"),
        "hardware": runtime.get("hardware", {}).get("requested"),
        "gcTimeout": runtime.get("gcTimeout"),
        "storage": runtime.get("storage"),
        "domains": runtime.get("domains"),
        "stage": runtime.get("stage"),
        "variables": variables,
        "secrets": secrets,
    }


def test_every_route_is_in_the_matrix(node: Node) -> None:
    with node.api(token=None) as c:
        schema = c.get("/api/v1/openapi.json").json()
    published = {(m.upper(), p) for p, ops in schema["paths"].items() for m in ops}
    assert published - set(MATRIX) == set(), "routes with no row in the authorization matrix"
    assert set(MATRIX) - published == set(), "rows for routes that no longer exist"


SPACE_ROUTES = [key for key, op in MATRIX.items() if op.kind in ("read", "write", "dup")]


@pytest.mark.parametrize(("method", "template"), SPACE_ROUTES, ids=lambda v: str(v))
def test_space_routes(world: World, method: str, template: str) -> None:
    op = MATRIX[(method, template)]
    for space_id, private in ((world.public, False), (world.private, True)):
        before = settings_of(world, space_id)
        for who in ("anonymous", "other", "reader"):
            r = call(world, who, method, template, space_id)
            label = f"{who} {method} {template} on the {'private' if private else 'public'} Space"
            if op.kind == "dup" and who == "reader":  # copying makes a Space: needs write
                assert r.status_code == 403, f"{label}: {r.status_code} {text(r)}"
            elif private and op.kind in ("read", "dup"):
                assert hidden(r, who == "anonymous") or (who == "reader" and not refused(r)), (
                    f"{label}: {r.status_code} {text(r)}"
                )
            elif op.kind == "read":
                assert not refused(r), f"{label}: {r.status_code} {text(r)}"
            elif op.kind == "dup":  # a public Space: anyone with a write token may copy it
                if who == "other":
                    assert r.status_code == 200, f"{label}: {r.status_code} {text(r)}"
                    copy_owner, copy = r.json()["url"].split("/spaces/")[-1].split("/")[:2]
                    with world.node.api() as admin:
                        body = {"type": "space", "name": copy, "organization": copy_owner}
                        admin.request("DELETE", "/api/repos/delete", json=body)
                else:
                    assert r.status_code == 401, f"{label}: {r.status_code}"
            else:  # a mutation
                want = {"anonymous": (401, 404) if private else (401,), "reader": (403,)}.get(
                    who, (404,) if private else (403,)
                )
                assert r.status_code in want, f"{label}: {r.status_code} {text(r)}"
                if private and who != "reader" and r.status_code == 404:
                    assert hidden(r, who == "anonymous"), label
        assert settings_of(world, space_id) == before, f"{method} {template}: a refusal changed it"
        if op.kind == "read":  # the owner's tokens and admins see it
            for who in ("reader", "owner", "admin"):
                r = call(world, who, method, template, space_id)
                assert not refused(r), f"{who} {method} {template}: {r.status_code} {text(r)}"


# Who a node route refuses with 403 (besides anonymous' 401): a read-only token changes no
# invitation, and only site and organization admins have any.
REFUSED = {
    ("admin", "reader"),
    ("admin", "other"),
    ("user_write", "reader"),
    ("inviter", "other"),
    ("namespace", "other"),
}


@pytest.mark.parametrize(
    ("method", "template"),
    [
        k
        for k, op in MATRIX.items()
        if op.kind in ("admin", "user", "user_write", "anyone", "inviter", "namespace")
    ],
    ids=lambda v: str(v),
)
def test_node_routes(world: World, method: str, template: str) -> None:
    op = MATRIX[(method, template)]
    method_kind = "read" if method == "GET" else "write"
    for who in ("anonymous", "reader", "other", "admin"):
        r = call(world, who, method, template, world.public)
        label = f"{who} {method} {template}: {r.status_code} {text(r)}"
        if op.kind == "anyone":
            assert r.status_code not in (401, 403), label
        elif who == "anonymous":
            assert r.status_code == 401, label
        elif (op.kind, who) in REFUSED or (op.kind, who, method_kind) == (
            "inviter",
            "reader",
            "write",
        ):
            assert r.status_code == 403, label
        else:
            assert r.status_code not in (401, 403), label


@pytest.mark.parametrize(
    ("method", "template"),
    [k for k, op in MATRIX.items() if op.kind in ("org_member", "org_admin")],
    ids=lambda v: str(v),
)
def test_org_routes(world: World, method: str, template: str) -> None:
    """Members see their organization, its admins manage it; to others it does not exist."""
    op = MATRIX[(method, template)]
    for who in ("anonymous", "other", "reader", "admin"):
        r = call(world, who, method, template, world.public)
        label = f"{who} {method} {template}: {r.status_code} {text(r)}"
        if who == "anonymous":
            assert r.status_code in (401, 404), label
        elif who == "other":
            assert r.status_code == 404, label
        elif who == "reader" and op.kind == "org_admin":
            assert r.status_code == 403 and "read-only" in r.json()["error"], label
        else:
            assert r.status_code not in (401, 403, 404), label


@pytest.mark.parametrize("template", ["/api/repos/delete", "/api/repos/move", "/api/repos/create"])
def test_repo_routes(world: World, template: str) -> None:
    method = "DELETE" if template.endswith("delete") else "POST"
    for space_id in (world.public, world.private):
        for who, want in (("anonymous", 401), ("reader", 403), ("other", 403)):
            r = call(world, who, method, template, space_id)
            ok = r.status_code == want or (
                space_id == world.private and who == "other" and hidden(r, False)
            )
            assert ok, f"{who} {method} {template} {space_id}: {r.status_code} {text(r)}"
    with world.node.api() as admin:
        assert admin.get(f"/api/spaces/{world.public}").status_code == 200
        assert admin.get(f"/api/spaces/{world.private}").status_code == 200


def test_listings_hide_private_spaces(world: World) -> None:
    for who, sees in (
        ("anonymous", False),
        ("other", False),
        ("reader", True),
        ("owner", True),
        ("admin", True),
    ):
        with world.node.api(world.tokens[who]) as c:
            for path in ("/api/spaces", "/api/v1/spaces"):
                r = c.get(path, params={"author": world.owner})
                assert r.status_code == 200, r.text
                listing = r.text
                assert (world.private in listing) == sees, f"{who} {path}"
                assert world.public in listing, f"{who} {path}"


INVALID = "sp_" + "x" * 43  # the shape of a token, known to no one (expired, revoked, mistyped)


@pytest.mark.parametrize(("method", "template"), list(MATRIX), ids=lambda v: str(v))
def test_an_invalid_token_is_refused_everywhere(world: World, method: str, template: str) -> None:
    """A wrong token is a 401 that says so, even where anonymous access is allowed: a user with
    an expired or mistyped token learns it at once (as on Hugging Face and GitHub)."""
    before = settings_of(world, world.public)
    world.tokens["invalid"] = INVALID
    world.names["invalid"] = world.owner
    try:
        r = call(world, "invalid", method, template, world.public)
    finally:
        del world.tokens["invalid"], world.names["invalid"]
    label = f"{method} {template} with an invalid token: {r.status_code} {text(r)}"
    assert r.status_code == 401, label
    if method != "HEAD":
        assert "invalid" in r.json()["error"].lower(), label
    assert settings_of(world, world.public) == before, f"{label}: a refusal changed it"


def test_git_refuses_invalid_credentials_and_serves_anonymous(world: World) -> None:
    """git sends credentials only after a 401, so a public repo's anonymous clone must keep
    working; credentials git does send (a private repo's challenge, or CI's extraHeader) are
    checked, and a wrong one fails with a message that names the problem."""
    settings = world.node.settings
    base = settings.url.rstrip("/")
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "/bin/false"}

    def ls_remote(url: str, *config: str) -> subprocess.CompletedProcess[str]:
        argv = ["git", *(a for c in config for a in ("-c", c)), "ls-remote", url]
        return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)

    public = f"{base}/spaces/{world.public}"
    assert ls_remote(public).returncode == 0  # anonymous, as any visitor
    for header in (f"Authorization: Bearer {INVALID}", "Authorization: Basic eDpXUk9ORw=="):
        out = ls_remote(public, f"http.extraHeader={header}")
        # A 401 to a header git did not ask for: it asks for a name (no prompt here), lists nothing
        assert out.returncode != 0 and out.stdout == "", f"{header}: {out.stdout}"
    private = f"{base}/spaces/{world.private}".replace("://", f"://x:{INVALID}@")
    out = ls_remote(private)
    assert out.returncode != 0 and out.stdout == ""
    assert "remote: invalid credentials" in out.stderr.lower(), out.stderr
    assert "authentication failed" in out.stderr.lower(), out.stderr
    owner = world.tokens["owner"]
    out = ls_remote(public, f"http.extraHeader=Authorization: Bearer {owner}")
    assert out.returncode == 0, out.stderr
    r = httpx.get(
        f"{public}/info/refs",
        params={"service": "git-upload-pack"},
        auth=("x", "WRONG"),
        timeout=30,
    )
    assert r.status_code == 401, r.text
    assert "invalid" in r.text.lower(), r.text
