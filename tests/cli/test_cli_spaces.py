"""`spaceport` CLI on real apps: wait for RUNNING, logs, restart, secrets and variables,
pause/resume, hardware, sleep; and `--wait` ending with exit code 8 on a failed build."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.cli.conftest import Cli
from tests.conftest import EXAMPLES, Node, unique

pytestmark = pytest.mark.slow


def test_operate_a_running_space(node: Node, cli: Cli) -> None:
    space_id = cli.json("create", unique("cli-app"))["id"]
    assert node.push(EXAMPLES / "gradio-hello", space_id).returncode == 0
    running = cli.json("status", space_id, "--wait", "--timeout", "240")
    assert running["stage"] == "RUNNING" and running["container"]["id"]
    build_log = cli("logs", space_id, "--build")
    assert build_log.returncode == 0 and f"Building {space_id}" in build_log.stdout

    restarted = cli.json("restart", space_id, "--wait", "--timeout", "120")
    assert restarted["stage"] == "RUNNING"
    assert restarted["container"]["id"] != running["container"]["id"]

    people = cli("secrets", "set", space_id, "API_KEY", "-", "--wait", input="hunter2\n")
    assert people.returncode == 0, people.stderr
    assert "RUNNING with it" in people.stdout
    secrets = cli.json("secrets", "list", space_id)
    assert "API_KEY" in secrets and "hunter2" not in str(secrets)
    assert "hunter2" not in cli("secrets", "list", space_id).stdout

    assert cli("vars", "set", space_id, "MODEL_ID", "gpt2").returncode == 0
    assert cli.json("vars", "list", space_id)["MODEL_ID"]["value"] == "gpt2"
    assert cli("vars", "rm", space_id, "MODEL_ID").returncode == 0
    assert "MODEL_ID" not in cli.json("vars", "list", space_id)

    cli.json("status", space_id, "--wait", "--timeout", "120")
    run_log = cli("logs", space_id, "--run")
    assert "Running on local URL" in run_log.stdout, run_log.stdout[-2000:]

    assert cli("pause", space_id).returncode == 0
    assert cli.json("status", space_id)["stage"] == "PAUSED"
    resumed = cli.json("resume", space_id, "--wait", "--timeout", "120")
    assert resumed["stage"] == "RUNNING"

    flavors = cli.json("hardware", space_id)
    assert flavors["current"] == "cpu-basic"
    assert {"cpu-basic", "t4-small"} <= {f["name"] for f in flavors["flavors"]}
    assert cli("sleep", space_id, "15m").returncode == 0
    assert cli.json("status", space_id)["sleepTime"] == 900
    assert cli("sleep", space_id, "soon").returncode == 2


def test_wait_ends_with_exit_8_when_the_build_fails(node: Node, cli: Cli, tmp_path: Path) -> None:
    space_id = cli.json("create", unique("cli-broken"))["id"]
    src = tmp_path / "broken"
    shutil.copytree(EXAMPLES / "gradio-hello", src)
    (src / "requirements.txt").write_text("no-such-package-for-spaceport-cli==1.0\n")
    assert node.push(src, space_id).returncode == 0
    waited = cli("status", space_id, "--wait", "--timeout", "240")
    assert waited.returncode == 8, waited.stdout + waited.stderr
    assert "BUILD_ERROR" in waited.stderr and "no-such-package-for-spaceport-cli" in waited.stderr
    steps = [line for line in waited.stdout.splitlines() if line.startswith("  · ")]
    assert steps, waited.stdout  # the build's live steps went by, not silence


def test_stop_start_and_duplicate(node: Node, cli: Cli) -> None:
    space_id = cli.json("create", unique("cli-dup"))["id"]
    assert node.push(EXAMPLES / "gradio-hello", space_id).returncode == 0
    running = cli.json("status", space_id, "--wait", "--timeout", "240")

    stopped = cli("stop", space_id)
    assert stopped.returncode == 0 and f"{space_id} stopped" in stopped.stdout, stopped.stderr
    assert cli.json("status", space_id)["stage"] == "STOPPED"
    shown = cli("status", space_id).stdout
    assert "Stopped (STOPPED)" in shown, shown  # the label people read, and HF's name
    assert "Stopped" in cli("list", "--search", space_id.split("/")[1]).stdout
    started = cli.json("start", space_id, "--wait", "--timeout", "120")
    assert started["stage"] == "RUNNING"
    assert started["container"]["id"] != running["container"]["id"]

    again = cli("duplicate", space_id)  # the same name under the same owner
    assert again.returncode == 2 and "name the copy" in again.stderr, again.stderr
    name = unique("cli-copy")
    copy = cli.json("duplicate", space_id, name, "--private", "--wait", "--timeout", "240")
    assert copy["id"] == f"admin/{name}" and copy["stage"] == "RUNNING"
    assert copy["private"] is True and copy["sha"] == running["sha"]

    public = cli("duplicate", space_id, f"admin/{unique('cli-copy')}")
    assert public.returncode == 0 and "it builds now" in public.stdout, public.stderr
    assert cli("duplicate", space_id, name).returncode == 6  # exists already: conflict


def test_custom_domains(cli: Cli) -> None:
    space_id = cli.json("create", unique("cli-domains"), "--sdk", "static")["id"]
    domain = f"{unique('cli')}.example.test"
    added = cli("domains", "add", space_id, domain)
    assert added.returncode == 0, added.stderr
    assert "point its DNS at this node" in added.stdout
    listed = cli.json("domains", "list", space_id)
    assert [(d["domain"], d["stage"]) for d in listed] == [(domain, "PENDING")]
    refused = cli("domains", "add", space_id, "not a domain")
    assert refused.returncode != 0 and "not a domain name" in refused.stderr
    assert cli("domains", "rm", space_id, domain).returncode == 0
    assert cli.json("domains", "list", space_id) == []
