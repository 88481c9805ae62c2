"""`spaceport` CLI without running apps: login, whoami, exit codes, create/list/status/delete,
users and tokens, doctor. Each runs the installed command against the live node."""

from __future__ import annotations

import json
import stat

from spaceport.engine import zram
from tests.cli.conftest import Cli
from tests.conftest import Node, unique


def test_login_keeps_the_token_private_and_whoami_uses_it(node: Node, cli: Cli) -> None:
    fresh = Cli(cli.creds.with_name("fresh.json"), node)
    bad = fresh("login", "--token", "sp_not_a_token")
    assert bad.returncode == 3 and "Invalid credentials" in bad.stderr
    assert not fresh.creds.exists()

    good = fresh("login", "--token", "-", input=node.token + "\n")
    assert good.returncode == 0 and "Signed in" in good.stdout
    assert stat.S_IMODE(fresh.creds.stat().st_mode) == 0o600
    me = fresh.json("whoami")
    assert me["name"] == "admin" and me["isAdmin"] and me["url"] == node.url

    assert fresh("logout").returncode == 0
    after = fresh("whoami")
    assert after.returncode == 3 and "spaceport login" in after.stderr


def test_exit_codes_say_what_went_wrong(node: Node, cli: Cli) -> None:
    assert cli("status", "admin/no-such-space").returncode == 5
    assert cli("status", "not-an-id").returncode == 2
    unreachable = cli("list", env={"SPACEPORT_URL": "http://127.0.0.1:9"})
    assert unreachable.returncode == 7 and "cannot reach" in unreachable.stderr

    space_id = node.create_space(unique("codes"))
    again = cli("create", space_id)
    assert again.returncode == 6 and "already" in again.stderr
    reader = cli.json("tokens", "create", unique("reader"), "--role", "read")["token"]
    denied = cli("pause", space_id, token=reader)
    assert denied.returncode == 4 and "write token" in denied.stderr
    assert cli("whoami", token="sp_revoked_or_never_was").returncode == 3


def test_create_list_status_embed_open_delete(node: Node, cli: Cli) -> None:
    name = unique("cli-made")
    made = cli.json("create", name, "--sdk", "static", "--private")
    space_id = made["id"]
    assert space_id == f"admin/{name}" and made["gitRemote"].endswith(f"/spaces/{space_id}")
    shown = cli("create", unique("cli-shown"))
    assert "git clone" in shown.stdout and "git push" in shown.stdout

    listed = cli.json("list", "--search", name)
    assert [s["id"] for s in listed] == [space_id]
    assert listed[0]["private"] is True and listed[0]["stage"] == "NO_APP_FILE"
    table = cli("list", "--search", name)
    assert space_id in table.stdout and "No app file" in table.stdout  # the stage's label

    status = cli.json("status", space_id)
    assert status["stage"] == "NO_APP_FILE" and status["sdk"] == "static"
    assert "iframe" in json.dumps(cli.json("embed", space_id))
    opened = cli("open", space_id, env={"BROWSER": "true"})
    assert opened.returncode == 0 and status["appUrl"] in opened.stdout

    kept = cli("delete", space_id, input="admin/something-else\n")
    assert kept.returncode == 2 and cli("status", space_id).returncode == 0
    assert cli("delete", space_id, "--yes").returncode == 0
    assert cli("status", space_id).returncode == 5


def test_users_and_tokens(cli: Cli) -> None:
    name = unique("erin")
    user = cli.json("users", "create", name, "--fullname", "Erin")
    assert user["name"] == name and user["token"].startswith("sp_")
    assert name in {u["name"] for u in cli.json("users", "list")}

    as_erin = {"token": user["token"]}
    assert cli("users", "list", **as_erin).returncode == 4  # not an admin
    made = cli.json("tokens", "create", "ci", "--role", "write", **as_erin)
    assert made["role"] == "write" and made["token"].startswith("sp_")
    mine = cli.json("tokens", "list", **as_erin)
    assert {t["name"] for t in mine} == {"first token", "ci"}
    assert all("token" not in t for t in mine)  # values are never listed

    revoked = cli("tokens", "revoke", str(made["id"]), **as_erin)
    assert revoked.returncode == 0 and "Revoked 'ci'" in revoked.stdout
    assert cli("whoami", token=made["token"]).returncode == 3


def test_doctor_and_proxy_operator_commands(cli: Cli) -> None:
    report = cli.json("doctor")
    names = {c["name"]: c["status"] for c in report["checks"]}
    assert report["ok"] is True, report
    parts = ("docker", "redis", "database", "worker", "api", "proxy", "disk", "gpus", "cluster")
    for part in parts:
        assert names.get(part) == "ok", (part, report)
    disks = next(c for c in report["checks"] if c["name"] == "data disks")
    assert disks["status"] == "ok" and "small 67.1MB" in disks["detail"], disks
    runtimes = next(c for c in report["checks"] if c["name"] == "runtimes")
    assert runtimes["detail"] == "runsc for flavor test-gvisor", runtimes  # tests/conftest.py
    cap = next(c for c in report["checks"] if c["name"] == "log rate cap")
    assert cap["status"] == "ok" and cap["detail"].startswith("1.0MiB/s per stream"), cap
    swap = next(c for c in report["checks"] if c["name"] == "zram")
    if zram.active() is not None or zram.unavailable_reason() is None:  # `up` could: it did
        assert swap["status"] == "ok" and "/dev/zram" in swap["detail"], swap
    else:  # the compressed tier is off, and the report says why
        assert swap["status"] == "warn" and "no zram swap" in swap["detail"], swap

    proxy = cli("proxy")  # operator command: the proxy runs already; routes reloaded from the db
    assert proxy.returncode == 0 and "already running" in proxy.stdout, proxy.stderr

    broken = cli("doctor", env={"SPACEPORT_REDIS_URL": "redis://127.0.0.1:1/0"})
    assert broken.returncode == 1
    assert "redis" in broken.stdout and "redis-server" in broken.stdout  # the fix is named

    failed = cli("doctor", "--json", env={"SPACEPORT_APP_RUNTIME": "runsk"})
    assert failed.returncode == 1, failed.stderr
    typo = json.loads(failed.stdout)
    runtimes = next(c for c in typo["checks"] if c["name"] == "runtimes")
    assert typo["ok"] is False and runtimes["status"] == "fail", runtimes
    assert "runsk (for SPACEPORT_APP_RUNTIME)" in runtimes["detail"], runtimes


def test_doctor_says_when_no_worker_takes_the_builds(node: Node, cli: Cli) -> None:
    """The node's worker stops taking the build queue (as if only build workers elsewhere were
    meant to, and none runs): doctor fails and says pushes will not build."""
    import socket

    from celery import Celery

    from spaceport.queue import BUILD_QUEUE

    control = Celery(broker=node.settings.redis_url).control
    worker = f"spaceport@{socket.gethostname()}"
    assert control.cancel_consumer(BUILD_QUEUE, destination=[worker], reply=True)
    try:
        failed = cli("doctor", "--json")
    finally:
        control.add_consumer(BUILD_QUEUE, destination=[worker], reply=True)
    assert failed.returncode == 1, failed.stderr
    report = json.loads(failed.stdout)
    check = next(c for c in report["checks"] if c["name"] == "worker")
    assert report["ok"] is False and check["status"] == "fail", check
    assert "build" in check["detail"] and "pushes will not build" in check["detail"], check
    assert next(c for c in cli.json("doctor")["checks"] if c["name"] == "worker")["status"] == "ok"


def test_scoped_expiring_tokens_invitations_and_user_admin(node: Node, cli: Cli) -> None:
    space_id = node.create_space(unique("cli-scope"), sdk="static")
    made = cli.json(
        "tokens",
        "create",
        unique("ci"),
        "--role",
        "write",
        "--scope",
        f"space:{space_id}",
        "--expires",
        "30d",
    )
    assert made["scope"] == [f"space:{space_id}"] and made["expiresAt"]
    listed = cli("tokens", "list")
    assert f"space:{space_id}" in listed.stdout
    me = Cli(cli.creds, node).json("whoami", token=made["token"])
    assert me["auth"]["accessToken"]["role"] == "fineGrained"
    bad = cli("tokens", "create", "x", "--scope", "nonsense")
    assert bad.returncode != 0 and "space:owner/name" in bad.stderr

    link = cli.json("users", "invite", "--days", "3")
    assert "/join/" in link["url"] and link["status"] == "pending"
    assert str(link["id"]) in cli("users", "invitations").stdout
    assert cli("users", "uninvite", str(link["id"])).returncode == 0

    name = unique("cli-user")
    token = cli.json("users", "create", name)["token"]
    with node.api(token) as c:  # a Space of their own
        r = c.post("/api/repos/create", json={"type": "space", "name": "kept", "sdk": "static"})
        assert r.status_code == 200, r.text
    assert cli("users", "deactivate", name).returncode == 0
    assert cli("whoami", token=token).returncode == 3
    [row] = [ln for ln in cli("users", "list").stdout.splitlines() if name in ln]
    assert "(deactivated)" in row
    assert cli("users", "activate", name).returncode == 0
    assert cli.json("whoami", token=token)["name"] == name
    refused = cli("users", "delete", name)
    assert refused.returncode == 6 and f"{name}/kept" in refused.stderr
    done = cli.json("users", "delete", name, "--delete-spaces", "--confirm", name)
    assert done["deletedSpaces"] == [f"{name}/kept"]
