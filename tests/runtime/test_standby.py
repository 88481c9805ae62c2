"""Standby containers (lifecycle/standby.py): after a Gradio Space deploys, the worker prepares a
container that already imported Gradio; the next code-only version starts in it. A version
with other dependencies does not, and a paused Space keeps no standby."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import httpx
import pytest

from tests.builder.helpers import clean_later, head_sha, variant, wait_deployed
from tests.conftest import PUBLIC_PORT, Node, launch_chromium, unique
from tests.runtime.helpers import containers, hf, node_env, serves_at_normal_weight, wait_for

pytestmark = pytest.mark.slow

LABEL_SPACE = "org.spaceport.space"
STANDBY_ENV = {"SPACEPORT_STANDBY_TTL_S": "600", "SPACEPORT_STANDBY_DELAY_S": "1"}
# The app answers with the commit it runs: a variable that differs per version.
APP = """import os

import gradio as gr

GREETING = "{greeting}"


def greet(name: str) -> str:
    return f"{{GREETING}}, {{name}}! ({{os.environ.get('SPACE_COMMIT_SHA', '')}})"


gr.Interface(fn=greet, inputs=gr.Textbox(label="Name"), outputs=gr.Textbox()).launch()
"""
STREAMLIT_APP = """import os

import streamlit as st

st.title("Version {version}")
st.write("commit " + os.environ.get("SPACE_COMMIT_SHA", "none"))
"""


@pytest.fixture
def standby_worker(node: Node) -> Iterator[None]:
    """The suite's node runs with standbys off (its tests count containers); here its worker
    (which prepares them) and its API (whose reconciler removes them after their lifetime) run
    with them on, as every node does by default."""
    with node_env(node, STANDBY_ENV):
        yield


def deployments(space_id: str) -> list[dict[str, Any]]:
    """The Space's deployment rows, oldest first, as an operator would read them."""
    from sqlalchemy import select

    from spaceport.db.models import Deployment, Space
    from spaceport.db.session import session_scope

    owner, name = space_id.split("/")
    with session_scope() as session:
        space = session.scalar(select(Space).where(Space.owner == owner, Space.name == name))
        assert space is not None
        rows = session.scalars(
            select(Deployment).where(Deployment.space_id == space.id).order_by(Deployment.id)
        )
        return [
            {
                "id": d.id,
                "status": d.status,
                "container": d.container_id,
                "commit": d.commit_sha,
                "image": d.image,
            }
            for d in rows
        ]


def warm_standby(space_id: str, timeout: float = 240) -> str:
    """The container of the Space's standby, once its interpreter imported Gradio."""

    def ready() -> str | None:
        rows = [d for d in deployments(space_id) if d["status"] == "standby" and d["container"]]
        if not rows:
            return None
        try:
            logs = docker.from_env().containers.get(rows[-1]["container"]).logs().decode()
        except docker.errors.NotFound:
            return None
        return str(rows[-1]["container"]) if "waiting for the app" in logs else None

    return wait_for(ready, timeout, every=0.5)


def serving(space_id: str) -> dict[str, Any]:
    [active] = [d for d in deployments(space_id) if d["status"] == "active"]
    return active


def answer(node: Node, space_id: str) -> str:
    """What the app answers through Caddy, as gradio_client would ask it."""
    host = {"Host": node.app_host(space_id)}
    base = f"http://127.0.0.1:{PUBLIC_PORT}/gradio_api/call/greet"
    r = httpx.post(base, json={"data": ["World"]}, headers=host, timeout=30)
    assert r.status_code == 200, r.text
    stream = httpx.get(f"{base}/{r.json()['event_id']}", headers=host, timeout=60).text
    return next(line[5:].strip() for line in stream.splitlines() if line.startswith("data:"))


def push_app(
    node: Node, tmp: Path, space_id: str, greeting: str, requirements: str, before: str = ""
) -> str:
    """Push the app answering `greeting`, with `before` as its first lines."""
    code = before + APP.format(greeting=greeting)
    app = variant(tmp, "gradio-hello", **{"app.py": code, "requirements.txt": requirements})
    assert node.push(app, space_id).returncode == 0
    wait_deployed(node, space_id, timeout=300)
    return head_sha(node, space_id)


def test_code_only_push_starts_in_the_standby(
    node: Node, standby_worker: None, tmp_path: Path
) -> None:
    space_id = node.create_space(unique("standby"), sdk="gradio")
    requirements = f"# {uuid.uuid4().hex}\n"  # a dependency set of its own
    try:
        push_app(node, tmp_path, space_id, "Hello", requirements)
        standby = warm_standby(space_id)
        assert serving(space_id)["container"] != standby

        # A code-only push: the new version runs in the standby's container, with its own
        # commit in the environment.
        sha = push_app(node, tmp_path, space_id, "Howdy", requirements)
        active = serving(space_id)
        assert (active["container"], active["commit"]) == (standby, sha)
        assert answer(node, space_id) == f'["Howdy, World! ({sha})"]'
        wait_for(lambda: serves_at_normal_weight(standby), 10)  # not behind the others now

        # A standby that died (here: killed) is not used; the version starts fresh.
        docker.from_env().containers.get(warm_standby(space_id)).kill()
        sha = push_app(node, tmp_path, space_id, "Hallo", requirements)
        assert answer(node, space_id) == f'["Hallo, World! ({sha})"]'

        # New dependencies: not the standby's (prepared again for the version above).
        standby = warm_standby(space_id)
        sha = push_app(node, tmp_path, space_id, "Hi", requirements + "six\n")
        assert serving(space_id)["container"] != standby
        assert answer(node, space_id) == f'["Hi, World! ({sha})"]'
        assert standby not in [
            d["container"] for d in deployments(space_id) if d["status"] in ("standby", "active")
        ]

        # A Space that sleeps gives its standby's memory back too (one came once the new
        # dependencies were compiled); so does a paused one.
        standby = warm_standby(space_id)
        with node.api() as api:
            r = api.post(f"/api/v1/spaces/{space_id}/sleep", params={"deep": True})
            assert r.status_code == 200, r.text
        wait_for(lambda: not containers(space_id), 60)
        assert all(d["status"] != "standby" for d in deployments(space_id))
        sha = push_app(node, tmp_path, space_id, "Hey", requirements + "six\n")
        assert answer(node, space_id) == f'["Hey, World! ({sha})"]'
        warm_standby(space_id)
        hf(node).pause_space(space_id)
        wait_for(lambda: not containers(space_id), 60)
        assert all(d["status"] != "standby" for d in deployments(space_id))
    finally:
        clean_later([space_id])


def test_a_library_imported_before_gradio_is_imported_ahead_too(
    node: Node, standby_worker: None, tmp_path: Path
) -> None:
    """An app that imports a library first (numpy here, torch in most ML demos) gets a standby
    that imported both, in its order; a version with code before its imports starts fresh."""
    space_id = node.create_space(unique("ahead"), sdk="gradio")
    requirements, first = f"# {uuid.uuid4().hex}\n", "import numpy as np\n"
    try:
        push_app(node, tmp_path, space_id, "Hello", requirements, before=first)
        standby = warm_standby(space_id)
        logs = docker.from_env().containers.get(standby).logs().decode()
        assert "Spaceport standby: numpy gradio imported in" in logs

        sha = push_app(node, tmp_path, space_id, "Howdy", requirements, before=first)
        active = serving(space_id)
        assert (active["container"], active["commit"]) == (standby, sha)
        assert answer(node, space_id) == f'["Howdy, World! ({sha})"]'

        # Code before the imports might change what they do: not run where they were done.
        standby = warm_standby(space_id)
        code_first = 'import os\nos.environ["MPLBACKEND"] = "Agg"\n' + first
        sha = push_app(node, tmp_path, space_id, "Hi", requirements, before=code_first)
        assert serving(space_id)["container"] != standby
        assert answer(node, space_id) == f'["Hi, World! ({sha})"]'
        assert standby not in [
            d["container"] for d in deployments(space_id) if d["status"] in ("standby", "active")
        ]
    finally:
        clean_later([space_id])


def test_streamlit_code_only_push_starts_in_the_standby(
    node: Node, standby_worker: None, tmp_path: Path
) -> None:
    """Streamlit's launcher path: the `streamlit run` entry point in the warmed interpreter."""
    from playwright.sync_api import sync_playwright

    space_id = node.create_space(unique("ststandby"), sdk="streamlit")
    requirements, standby = f"# {uuid.uuid4().hex}\n", ""
    try:
        for version in ("one", "two"):
            app = variant(
                tmp_path,
                "streamlit-hello",
                **{
                    "app.py": STREAMLIT_APP.format(version=version),
                    "requirements.txt": requirements,
                },
            )
            if version == "two":
                standby = warm_standby(space_id)
            assert node.push(app, space_id).returncode == 0
            wait_deployed(node, space_id, timeout=300)
        active = serving(space_id)
        assert (active["container"], active["commit"]) == (standby, head_sha(node, space_id))
        # The next standby starts a second after the deploy. Its veth appearing on this host
        # makes the browser here abort its requests (net::ERR_NETWORK_CHANGED: Streamlit's
        # scripts failed and the page stayed empty in CI); a visitor's browser runs elsewhere.
        standby = warm_standby(space_id)
        with sync_playwright() as pw:
            browser = launch_chromium(pw, node, space_id)
            try:
                page = browser.new_page()
                # Twice at most: another container's veth appearing aborts this browser's
                # requests (see above); CI once saw an empty page after 60 s, cause unknown.
                for attempt in (1, 2):
                    page.goto(node.app_url(space_id), timeout=60_000)
                    try:
                        page.get_by_text(f"commit {active['commit']}").wait_for(timeout=45_000)
                        break
                    except Exception:  # keep what the visitor saw, and what started then
                        print(f"attempt {attempt}, page:", page.inner_text("body")[:2000])
                        engine = docker.from_env()
                        logs = engine.containers.get(active["container"]).logs(tail=60)
                        print("the app's logs:", logs.decode(errors="replace"))
                        for c in engine.containers.list(all=True):
                            print("container", c.name, c.status, c.attrs["State"]["StartedAt"])
                        if attempt == 2:
                            raise
                assert page.get_by_role("heading", name="Version two").is_visible()
            finally:
                browser.close()
        # It was told where visitors reach it (STREAMLIT_BROWSER_SERVER_ADDRESS): it did not
        # ask the internet for its address before serving (20 s where no outside name resolves).
        logs = docker.from_env().containers.get(active["container"]).logs().decode()
        assert "Did not auto detect external IP" not in logs, logs[-2000:]
        assert f"URL: http://{node.settings.app_host(*space_id.split('/'))}:" in logs, logs[-2000:]
        # Deleting the Space removes its standby, not the compiled dependencies it ran from
        # (other Spaces with the same requirements start from them).
        image = docker.from_env().containers.get(standby).attrs["Config"]["Image"]
        hf(node).delete_repo(space_id, repo_type="space")
        wait_for(lambda: not containers(space_id, all=True), 60)
        assert docker.from_env().images.get(image).tags, image
    finally:
        clean_later([space_id])


def test_a_taken_standby_is_labelled_as_what_it_now_is(
    node: Node, standby_worker: None, tmp_path: Path
) -> None:
    """Labels cannot change: a standby carries none that stops being true once it takes a
    version (it once kept `org.spaceport.standby` while serving the Space)."""
    space_id = node.create_space(unique("taken"), sdk="gradio")
    requirements = f"# {uuid.uuid4().hex}\n"
    try:
        push_app(node, tmp_path, space_id, "Hello", requirements)
        standby = warm_standby(space_id)
        sha = push_app(node, tmp_path, space_id, "Howdy", requirements)
        active = serving(space_id)
        assert active["container"] == standby  # taken
        labels = docker.from_env().containers.get(standby).labels
        assert not [k for k in labels if "standby" in k], labels
        assert labels["org.spaceport.space"] == space_id
        assert labels["org.spaceport.deployment"] == str(active["id"])
        assert labels["org.spaceport.instance"] == node.settings.instance
        assert labels.get("org.spaceport.commit", sha) == sha, labels  # never another one
    finally:
        clean_later([space_id])


def test_the_code_copy_container_is_labelled_with_the_node(node: Node) -> None:
    """Taking a standby copies the new version's code out of its image through a container
    the engine creates: it carries this node's labels and the Space's, whatever the image
    says (it had none of its own: an image without them left a container no sweep of the
    node's containers could see)."""
    from spaceport.engine.docker_backend import DockerBackend

    client = docker.from_env()
    image = f"{node.settings.base_image_repo}:{node.settings.default_python}"
    assert "org.spaceport.instance" not in (client.images.get(image).labels or {})
    space_id = f"admin/{unique('copy')}"
    target = client.containers.create(image, ["sleep", "300"], labels={LABEL_SPACE: space_id})
    since = int(time.time())
    try:
        DockerBackend(node.settings).copy_from_image(image, "/usr/lib/os-release", target.id or "")
        target.reload()
        events = client.events(  # (made from the image's id: the archive it reads is that id's)
            since=since,
            until=int(time.time()) + 1,
            decode=True,
            filters={"type": "container", "event": "create", "image": client.images.get(image).id},
        )
        copies = [e for e in events if e["Actor"]["ID"] != target.id]
    finally:
        target.remove(force=True)
    assert copies
    for event in copies:
        attributes = event["Actor"]["Attributes"]
        assert attributes.get("org.spaceport.instance") == node.settings.instance, attributes
        assert attributes.get("org.spaceport.managed") == "true", attributes
        assert attributes.get(LABEL_SPACE) == space_id, attributes
        with pytest.raises(docker.errors.NotFound):  # and it is gone
            client.containers.get(event["Actor"]["ID"])
