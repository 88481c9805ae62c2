"""`spaceport quota`: an admin sets a user's limits, the user reads them, and a command that
would go over one fails with the quota's message (exit code 4, forbidden)."""

from __future__ import annotations

from tests.cli.conftest import Cli
from tests.conftest import unique


def test_quota_set_show_and_a_refusal(cli: Cli) -> None:
    name = unique("quin")
    user = cli.json("users", "create", name)
    as_user = {"token": user["token"]}

    report = cli.json("quota", "set", name, "--spaces", "1", "--cpu", "2.5", "--gpus", "0")
    assert report["limits"]["spaces"] == 1 and report["limits"]["cpu"] == 2.5
    assert report["limits"]["gpus"] == 0 and report["limits"]["builds_per_hour"] is None

    assert cli("create", f"{name}/one", "--sdk", "static", **as_user).returncode == 0
    refused = cli("create", f"{name}/two", "--sdk", "static", **as_user)
    assert refused.returncode == 4, refused.stdout + refused.stderr
    assert f"Quota exceeded for {name}: at most 1 Spaces, it has 1 ({name}/one)" in refused.stderr
    assert f"spaceport quota set {name} --spaces N" in refused.stderr

    shown = cli("quota", "show", name, **as_user)  # a user reads their own
    assert shown.returncode == 0, shown.stderr
    assert "Spaces" in shown.stdout and f"{name}/one" in shown.stdout
    assert "2.5" in shown.stdout and "unlimited" in shown.stdout
    assert cli("quota", "set", name, "--spaces", "9", **as_user).returncode == 4  # admins only

    cleared = cli.json("quota", "set", name, "--spaces", "none", "--cpu", "unlimited")
    assert cleared["limits"]["spaces"] is None and cleared["limits"]["cpu"] is None
    assert cleared["limits"]["gpus"] == 0  # not given: kept
    assert cli("create", f"{name}/two", "--sdk", "static", **as_user).returncode == 0
    bad = cli("quota", "set", name, "--spaces", "1.5")
    assert bad.returncode == 2 and "a whole number" in bad.stderr
    assert name in {r["namespace"] for r in cli.json("quota", "list")}
