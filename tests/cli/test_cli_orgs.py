"""`spaceport orgs ...` and `spaceport members ...` against the real node."""

from __future__ import annotations

from tests.cli.conftest import Cli
from tests.conftest import unique


def test_orgs_and_members(cli: Cli) -> None:
    org, student = unique("course"), unique("ta")
    token = cli.json("users", "create", student)["token"]
    made = cli.json("orgs", "create", org, "--fullname", "ML 101")
    assert made["role"] == "admin" and made["fullname"] == "ML 101"

    out = cli("members", "add", org, student, "--role", "contributor")
    assert out.returncode == 0 and f"{student} is a contributor member of {org}" in out.stdout
    listed = cli("members", "list", org)
    assert student in listed.stdout and "contributor" in listed.stdout
    # the member sees the organization with their role; a bad role is refused with the choices
    mine = cli.json("orgs", "list", token=token)
    assert [(o["name"], o["role"]) for o in mine] == [(org, "contributor")]
    bad = cli("members", "add", org, student, "--role", "owner")
    assert bad.returncode != 0 and "contributor" in bad.stderr, bad.stderr
    # a contributor cannot manage members: the refusal names why
    refused = cli("members", "add", org, "admin", token=token)
    assert refused.returncode != 0 and f"not an admin of the organization {org}" in refused.stderr

    renamed = unique("course-b")
    out = cli("orgs", "rename", org, renamed)
    assert out.returncode == 0 and "0 Space(s) moved" in out.stdout, out.stderr
    shown = cli.json("orgs", "show", renamed)
    assert {m["user"] for m in shown["members"]} == {"admin", student}
    out = cli("members", "remove", renamed, student, token=token)  # leaving
    assert out.returncode == 0, out.stderr
    assert cli("orgs", "delete", renamed, "--yes").returncode == 0
    gone = cli("orgs", "show", renamed)
    assert gone.returncode != 0 and "No organization" in gone.stderr
