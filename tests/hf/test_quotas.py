"""Quotas as a user meets them: an admin sets limits on a namespace; what would go over one is
refused with a 403 (Hugging Face's error shape, read by huggingface_hub) or, on git, with the
message git prints, naming the limit, the usage and what to do. Nothing running stops.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from huggingface_hub import CommitOperationAdd, HfApi
from huggingface_hub.errors import HfHubHTTPError

from tests.conftest import Node, unique
from tests.hf.conftest import STATIC_README, User, repo_head, wait_running

UNLIMITED = {
    "spaces": None,
    "cpu": None,
    "memory_gb": None,
    "gpus": None,
    "storage_gb": None,
    "builds_per_hour": None,
}


def new_user(prefix: str) -> User:
    from spaceport.db.session import session_scope
    from spaceport.services.users import create_user

    name = unique(prefix)
    with session_scope() as session:
        _, token = create_user(session, name)
    return User(name, token)


def set_quota(node: Node, namespace: str, **limits: Any) -> dict[str, Any]:
    with node.api() as admin:
        r = admin.put(f"/api/v1/quotas/{namespace}", json=limits)
        assert r.status_code == 200, r.text
        return dict(r.json())


def refusal(call: Any) -> str:
    """The message huggingface_hub raises for a 403 (from the body's `error`)."""
    with pytest.raises(HfHubHTTPError) as err:
        call()
    assert err.value.response.status_code == 403, err.value
    message = str(err.value.response.json()["error"])
    assert err.value.response.headers["x-error-message"].startswith("Quota exceeded"), message
    assert message in str(err.value)  # what the user's script prints
    return message


@dataclass
class Built:
    user: User
    api: HfApi
    space_id: str


@pytest.fixture(scope="module")
def built(node: Node) -> Iterator[Built]:
    """A user's static Space, built and running (one build); quotas reset after each test."""
    user = new_user("quota")
    api = HfApi(endpoint=node.url, token=user.token)
    space_id = f"{user.name}/site"
    api.create_repo(space_id, repo_type="space", space_sdk="static")
    api.create_commit(
        space_id,
        [
            CommitOperationAdd("README.md", STATIC_README.format(title="quota").encode()),
            CommitOperationAdd("index.html", b"<h1>quota</h1>\n"),
        ],
        commit_message="site",
        repo_type="space",
    )
    wait_running(api, space_id)
    yield Built(user, api, space_id)


@pytest.fixture()
def q(node: Node, built: Built) -> Iterator[Built]:
    yield built
    set_quota(node, built.user.name, **UNLIMITED)


def test_spaces_limit_refuses_create_duplicate_and_move(node: Node) -> None:
    user = new_user("lab")
    api = HfApi(endpoint=node.url, token=user.token)
    report = set_quota(node, user.name, spaces=1)
    assert report["limits"]["spaces"] == 1 and report["usage"]["spaces"] == 0
    api.create_repo(f"{user.name}/a", repo_type="space", space_sdk="static")

    message = refusal(
        lambda: api.create_repo(f"{user.name}/b", repo_type="space", space_sdk="static")
    )
    assert message == (
        f"Quota exceeded for {user.name}: at most 1 Spaces, it has 1 ({user.name}/a). Delete "
        f"one or ask an admin to raise the limit (spaceport quota set {user.name} --spaces N)."
    )
    refusal(lambda: api.duplicate_repo(f"{user.name}/a", to_id=f"{user.name}/c", repo_type="space"))
    admin = HfApi(endpoint=node.url, token=node.token)
    mine = f"admin/{unique('moving')}"
    admin.create_repo(mine, repo_type="space", space_sdk="static")
    refusal(lambda: admin.move_repo(mine, f"{user.name}/moved", repo_type="space"))
    assert [s.id for s in api.list_spaces(author=user.name)] == [f"{user.name}/a"]

    set_quota(node, user.name, spaces=None)  # null: unlimited
    api.create_repo(f"{user.name}/b", repo_type="space", space_sdk="static")


def test_quota_routes_and_audit(node: Node) -> None:
    user, stranger = new_user("owner"), new_user("stranger")
    set_quota(node, user.name, cpu=4, builds_per_hour=10)
    report = set_quota(node, user.name, cpu=2.5)  # only what is given changes
    assert report["limits"] == {**UNLIMITED, "cpu": 2.5, "builds_per_hour": 10}
    with httpx.Client(base_url=node.url, timeout=30) as c:
        own = c.get(
            f"/api/v1/quotas/{user.name}", headers={"Authorization": f"Bearer {user.token}"}
        )
        assert own.status_code == 200 and own.json()["limits"]["cpu"] == 2.5
        for token, path in ((stranger.token, user.name), (user.token, "admin")):
            r = c.get(f"/api/v1/quotas/{path}", headers={"Authorization": f"Bearer {token}"})
            assert r.status_code == 403, r.text
        r = c.put(
            f"/api/v1/quotas/{user.name}",
            json={"cpu": 100},
            headers={"Authorization": f"Bearer {user.token}"},
        )
        assert r.status_code == 403, r.text
    with node.api() as admin:
        assert admin.get("/api/v1/quotas/nobody-at-all").status_code == 404
        assert admin.put("/api/v1/quotas/x", json={"spaces": -1}).status_code == 422
        listed = {r["namespace"] for r in admin.get("/api/v1/quotas").json()}
        assert {user.name, stranger.name, "admin"} <= listed

    from sqlalchemy import select

    from spaceport.db.models import AuditEvent
    from spaceport.db.session import session_scope

    with session_scope() as session:
        events = session.scalars(
            select(AuditEvent).where(AuditEvent.namespace == user.name).order_by(AuditEvent.id)
        ).all()
        assert [(e.action, e.actor, e.details) for e in events] == [
            ("quota.set", "admin", {"cpu": 4, "builds_per_hour": 10}),
            ("quota.set", "admin", {"cpu": 2.5}),
        ]


def test_hardware_over_cpu_and_gpu(node: Node, q: Built) -> None:
    name, sid = q.user.name, q.space_id
    set_quota(node, name, cpu=4)
    message = refusal(lambda: q.api.request_space_hardware(sid, "cpu-upgrade"))
    assert message.startswith(
        f"Quota exceeded for {name}: at most 4 CPUs in awake Spaces; {sid} on cpu-upgrade "
        "needs 8 and the others use 0 (none)."
    ), message
    assert f"spaceport quota set {name} --cpu N" in message
    set_quota(node, name, cpu=None, gpus=0)
    message = refusal(lambda: q.api.request_space_hardware(sid, "t4-small"))
    assert f"at most 0 GPUs; {sid} on t4-small needs 1 and the others use 0 (none)" in message
    assert q.api.get_space_runtime(sid).raw["hardware"]["requested"] == "cpu-basic"


def test_lowered_quota_stops_nothing_and_holds_a_paused_space(node: Node, q: Built) -> None:
    name, sid = q.user.name, q.space_id
    report = set_quota(node, name, cpu=1, memory_gb=1)  # below what runs: cpu-basic is 2, 16 GB
    assert report["usage"]["cpu"] == 2 and report["usedBy"]["cpu"] == {sid: 2}
    assert node.app_get(sid).status_code == 200  # still serving
    q.api.pause_space(sid)
    message = refusal(lambda: q.api.restart_space(sid))
    assert f"at most 1 CPUs in awake Spaces; {sid} on cpu-basic needs 2" in message
    assert q.api.get_space_runtime(sid).stage == "PAUSED"
    set_quota(node, name, cpu=2, memory_gb=16)
    q.api.restart_space(sid)
    wait_running(q.api, sid)


def test_push_over_builds_per_hour_is_refused_by_git(node: Node, q: Built, tmp_path: Path) -> None:
    name, sid = q.user.name, q.space_id
    with node.api() as admin:
        started = admin.get(f"/api/v1/quotas/{name}").json()["usage"]["builds_per_hour"]
    assert started >= 1
    set_quota(node, name, builds_per_hour=started)
    head = repo_head(node, sid)
    (tmp_path / "README.md").write_text(STATIC_README.format(title="quota"))
    (tmp_path / "index.html").write_text("<h1>version 2</h1>\n")
    out = node.push(tmp_path, sid, q.user.token)
    assert out.returncode != 0
    assert f"remote:   - Quota exceeded for {name}: at most {started} builds per hour" in out.stderr
    assert f"spaceport quota set {name} --builds-per-hour N" in out.stderr
    assert "main -> main (pre-receive hook declined)" in out.stderr, out.stderr
    assert repo_head(node, sid) == head
    app = node.app_get(sid)  # the running app stays up, unchanged
    assert app.status_code == 200 and "<h1>quota</h1>" in app.text
    refusal(
        lambda: q.api.upload_file(
            path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=sid, repo_type="space"
        )
    )
    assert repo_head(node, sid) == head


def test_a_visitor_cannot_wake_a_space_over_quota(node: Node, q: Built) -> None:
    name, sid = q.user.name, q.space_id
    with httpx.Client(base_url=node.url, timeout=30) as c:
        auth = {"Authorization": f"Bearer {q.user.token}"}
        r = c.post(f"/api/v1/spaces/{sid}/sleep", params={"deep": "true"}, headers=auth)
        assert r.status_code == 200 and r.json()["stage"] == "SLEEPING", r.text
        set_quota(node, name, cpu=1)
        page = node.app_get(sid)
        assert page.status_code == 503
        assert "stays asleep" in page.text
        # a visitor learns why, not which other Spaces of the owner use the quota (some may
        # be private): the details are the owner's
        assert "Quota exceeded" not in page.text and "at most" not in page.text
        assert q.api.get_space_runtime(sid).stage == "SLEEPING"
        r = c.post(f"/api/v1/spaces/{sid}/wake")
        assert r.status_code == 403 and "stays asleep" in r.json()["error"], r.text
        r = c.post(f"/api/v1/spaces/{sid}/wake", headers=auth)
        assert r.status_code == 403, r.text
        assert f"Quota exceeded for {name}: at most 1 CPUs in awake Spaces" in r.json()["error"]
    q.api.add_space_variable(sid, "COLOR", "blue")  # a change is kept, and wakes nothing
    assert q.api.get_space_runtime(sid).stage == "SLEEPING"
    set_quota(node, name, cpu=None)
    node.app_get(sid)  # this visit wakes it
    wait_running(q.api, sid)
    assert node.app_get(sid).status_code == 200


def test_an_organization_quota_binds_its_members_and_follows_a_rename(node: Node) -> None:
    member, outsider = new_user("member"), new_user("outsider")
    org = unique("team")
    with node.api(member.token) as c:
        assert c.post("/api/v1/orgs", json={"name": org}).status_code == 201
    set_quota(node, org, spaces=1)
    api = HfApi(endpoint=node.url, token=member.token)
    api.create_repo(f"{org}/one", repo_type="space", space_sdk="static")
    message = refusal(lambda: api.create_repo(f"{org}/two", repo_type="space", space_sdk="static"))
    assert message.startswith(f"Quota exceeded for {org}: at most 1 Spaces, it has 1 ({org}/one)")
    with node.api(member.token) as c:  # members read their organization's quota
        assert c.get(f"/api/v1/quotas/{org}").json()["usedBy"]["spaces"] == [f"{org}/one"]
    with node.api(outsider.token) as c:
        assert c.get(f"/api/v1/quotas/{org}").status_code == 403

    renamed = unique("renamed")
    with node.api(member.token) as c:  # a rename adds no usage, and the quota goes along
        r = c.patch(f"/api/v1/orgs/{org}", json={"name": renamed})
        assert r.status_code == 200, r.text
        report = c.get(f"/api/v1/quotas/{renamed}").json()
    assert report["limits"]["spaces"] == 1 and report["usedBy"]["spaces"] == [f"{renamed}/one"]
    refusal(lambda: api.create_repo(f"{renamed}/two", repo_type="space", space_sdk="static"))
