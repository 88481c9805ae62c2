"""`spaceport audit`: a Space's log as a table, JSON and JSON lines, filters, and the refusal a
user who is no admin gets for the whole log. Runs the installed command against the live node."""

from __future__ import annotations

import json

from tests.cli.conftest import Cli
from tests.conftest import Node, unique


def test_audit_shows_filters_and_exports(node: Node, cli: Cli) -> None:
    space_id = node.create_space(unique("cli-audit"), sdk="static")
    with node.api() as admin:
        body = {"key": "CLI_KEY", "value": "never-shown-value"}
        assert admin.post(f"/api/spaces/{space_id}/secrets", json=body).status_code == 200
        user = admin.post("/api/v1/users", json={"name": unique("carol")}).json()

    entries = cli.json("audit", "--space", space_id)
    assert [(e["action"], e["actor"]) for e in entries] == [
        ("space.secret.set", "admin"),
        ("space.create", "admin"),
    ]
    table = cli("audit", "--space", space_id, "--action", "space.secret")
    assert table.returncode == 0, table.stderr
    assert "space.secret.set" in table.stdout and "key=CLI_KEY" in table.stdout
    assert "space.create" not in table.stdout and "never-shown-value" not in table.stdout

    lines = cli("audit", "--space", space_id, "--jsonl")
    assert lines.returncode == 0, lines.stderr
    assert [json.loads(line) for line in lines.stdout.splitlines()] == entries
    site = cli("audit", "--actor", "admin", "--action", "user.create", "--limit", "5", "--jsonl")
    assert user["name"] in site.stdout and len(site.stdout.splitlines()) <= 5

    refused = cli("audit", token=user["token"])
    assert refused.returncode == 4, refused.stderr + refused.stdout
    assert cli("audit", "--space", space_id, "--org", "x").returncode == 2
    with node.api() as admin:
        body = {"type": "space", "name": space_id.split("/")[1]}
        admin.request("DELETE", "/api/repos/delete", json=body)
