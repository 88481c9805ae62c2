"""The foundation journey, end to end on real parts: create a Space, git push a Gradio app,
watch it build and start, use it through the proxy with gradio_client, push a change, see it live.
Plus the refusals and failures a user must see clearly.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import docker
import pytest

from tests.conftest import EXAMPLES, Node, hosts_entries, unique

pytestmark = pytest.mark.slow


def gradio_app(tmp: Path, greeting: str) -> Path:
    src = tmp / f"app-{greeting}"
    shutil.copytree(EXAMPLES / "gradio-hello", src)
    app = src / "app.py"
    app.write_text(app.read_text().replace('GREETING = "Hello"', f'GREETING = "{greeting}"'))
    return src


def head_sha(node: Node, space_id: str) -> str:
    import subprocess

    owner, name = space_id.split("/")
    repo = node.settings.repos_dir / owner / f"{name}.git"
    return subprocess.run(
        ["git", "--git-dir", str(repo), "rev-parse", "main"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def test_push_gradio_app_then_update_it(node: Node, tmp_path: Path) -> None:
    from gradio_client import Client

    name = unique("hello")
    space_id = node.create_space(name)
    push = node.push(gradio_app(tmp_path, "Hello"), space_id)
    assert push.returncode == 0, push.stderr
    sha1 = head_sha(node, space_id)

    rt, seen = node.wait_stage(space_id, {"RUNNING"}, sha=sha1)
    assert "APP_STARTING" in seen, seen  # BUILDING may be too quick to observe after the push
    assert rt["hardware"] == {"current": "cpu-basic", "requested": "cpu-basic"}

    # The container: labelled with the Space and commit, published on loopback only.
    client = docker.from_env()
    [container] = client.containers.list(filters={"label": f"org.spaceport.space={space_id}"})
    assert container.labels["org.spaceport.commit"] == sha1
    bindings = container.attrs["NetworkSettings"]["Ports"]["7860/tcp"]
    assert {b["HostIp"] for b in bindings} == {"127.0.0.1"}
    assert container.attrs["Config"]["User"] == "1000:1000"

    page = node.app_get(space_id)
    assert page.status_code == 200 and "gradio" in page.text.lower()

    host = node.app_host(space_id).split(":")[0]
    with hosts_entries(host):
        answer = Client(node.app_url(space_id), verbose=False).predict("World", api_name="/greet")
        assert answer == "Hello, World!"

        push = node.push(gradio_app(tmp_path, "Howdy"), space_id)
        assert push.returncode == 0, push.stderr
        sha2 = head_sha(node, space_id)
        assert sha2 != sha1
        node.wait_stage(space_id, {"RUNNING"}, sha=sha2)
        answer = Client(node.app_url(space_id), verbose=False).predict("World", api_name="/greet")
        assert answer == "Howdy, World!"
    # The old container is drained and removed; only the new commit runs.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        running = client.containers.list(filters={"label": f"org.spaceport.space={space_id}"})
        if len(running) == 1:
            break
        time.sleep(0.5)
    assert [c.labels["org.spaceport.commit"] for c in running] == [sha2]


def test_push_refused_without_token_or_rights(node: Node, tmp_path: Path) -> None:
    from spaceport.db.session import session_scope
    from spaceport.services.users import create_user

    space_id = node.create_space(unique("guarded"))
    anonymous = node.push(EXAMPLES / "gradio-hello", space_id, token="")
    assert anonymous.returncode != 0
    # A 401 makes git ask for credentials (it cannot here: no terminal).
    assert "could not read Username" in anonymous.stderr, anonymous.stderr

    bad = node.push(EXAMPLES / "gradio-hello", space_id, token="sp_not_a_real_token")
    assert bad.returncode != 0
    assert "Authentication failed" in bad.stderr, bad.stderr

    with session_scope() as session:
        _, other_token = create_user(session, unique("mallory"))
    other = node.push(EXAMPLES / "gradio-hello", space_id, token=other_token)
    assert other.returncode != 0
    assert "not allowed to push" in other.stderr, other.stderr
    assert node.runtime(space_id)["stage"] == "NO_APP_FILE"  # nothing landed


def test_malformed_front_matter_gives_config_error(node: Node, tmp_path: Path) -> None:
    space_id = node.create_space(unique("broken"))
    src = tmp_path / "broken"
    shutil.copytree(EXAMPLES / "gradio-hello", src)
    (src / "README.md").write_text("---\nsdk: gradio\ntitle: [unclosed\n---\n")
    assert node.push(src, space_id).returncode == 0
    rt, _ = node.wait_stage(space_id, {"CONFIG_ERROR"}, timeout=60)
    assert "not valid YAML" in rt["errorMessage"]

    (src / "README.md").write_text("---\nsdk: gradoi\n---\n")
    assert node.push(src, space_id).returncode == 0
    rt, _ = node.wait_stage(space_id, {"CONFIG_ERROR"}, timeout=60, sha=head_sha(node, space_id))
    assert (
        "'sdk' must be one of gradio, streamlit, docker, static (got 'gradoi')"
        in rt["errorMessage"]
    )


def test_failed_build_keeps_previous_version_serving(node: Node, tmp_path: Path) -> None:
    space_id = node.create_space(unique("steady"))
    assert node.push(gradio_app(tmp_path, "Steady"), space_id).returncode == 0
    node.wait_stage(space_id, {"RUNNING"}, sha=head_sha(node, space_id))

    broken = gradio_app(tmp_path, "Broken")
    (broken / "requirements.txt").write_text("this-package-does-not-exist-spaceport==9.9.9\n")
    assert node.push(broken, space_id).returncode == 0
    bad_sha = head_sha(node, space_id)
    node.wait_stage(space_id, {"RUNNING_BUILDING"}, timeout=60)
    deadline_rt, _ = node.wait_stage(space_id, {"RUNNING"}, sha=bad_sha)
    assert "Build failed" in deadline_rt["errorMessage"]
    assert "this-package-does-not-exist-spaceport" in deadline_rt["errorMessage"]
    page = node.app_get(space_id, "/config")
    assert page.status_code == 200  # the previous version still answers
