"""Every SDK builds and serves: each example is pushed with real git to the running node and
used through the proxy the way a browser or client would. The CPU examples are pushed together
(the worker builds two at a time) and checked one by one."""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.builder.helpers import builds, clean_later, variant, wait_deployed
from tests.conftest import ARTIFACTS, EXAMPLES, PUBLIC_PORT, Node, launch_chromium, unique

pytestmark = pytest.mark.slow

EXAMPLE_NAMES = ("gradio-chat", "streamlit-hello", "docker-fastapi", "static-site", "gpu-nvml")
BUILD_TOKEN = "s3cret-build-token-" + unique("t")


@pytest.fixture(scope="module")
def spaces(node: Node) -> Iterator[dict[str, str]]:
    ids = {
        name: node.create_space(unique(name.split("-")[0]), sdk=load_sdk(name))
        for name in EXAMPLE_NAMES
    }
    with node.api() as api:
        fastapi = ids["docker-fastapi"]
        r = api.post(f"/api/spaces/{fastapi}/variables", json={"key": "GREETING", "value": "Howdy"})
        assert r.status_code == 200, r.text
        r = api.post(
            f"/api/spaces/{fastapi}/secrets", json={"key": "BUILD_TOKEN", "value": BUILD_TOKEN}
        )
        assert r.status_code == 200, r.text
    for name, space_id in ids.items():
        push = node.push(EXAMPLES / name, space_id)
        assert push.returncode == 0, push.stderr
    # Every example deployed before the first test: a deploy reloads Caddy, and a reload while a
    # browser loads a page can fail one of its requests (docs/architecture.md, "Proxy reloads").
    for space_id in ids.values():
        running(node, space_id)
    yield ids
    clean_later(list(ids.values()))


def load_sdk(name: str) -> str:
    from spaceport.front_matter import load_config

    return load_config(EXAMPLES / name).sdk


def running(node: Node, space_id: str) -> dict[str, Any]:
    rt, _ = node.wait_stage(space_id, {"RUNNING"}, timeout=300)
    assert not rt.get("errorMessage"), rt
    return rt


def test_gradio_chat_streams_its_reply(node: Node, spaces: dict[str, str]) -> None:
    """Gradio's own HTTP API, as its JS client uses it: the reply arrives as growing chunks."""
    space_id = spaces["gradio-chat"]
    running(node, space_id)
    host = {"Host": node.app_host(space_id)}
    base = f"http://127.0.0.1:{PUBLIC_PORT}/gradio_api/call/chat"
    r = httpx.post(base, json={"data": ["hi there"]}, headers=host, timeout=30)
    assert r.status_code == 200, r.text
    event_id = r.json()["event_id"]
    chunks: list[str] = []
    with httpx.stream("GET", f"{base}/{event_id}", headers=host, timeout=60) as stream:
        event = ""
        for line in stream.iter_lines():
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and event in ("generating", "complete"):
                chunks.append(json.loads(line[5:])[0])
    final = "You said: hi there. This reply is streamed one word at a time."
    assert chunks[-1] == final
    partial = [c for c in chunks if c != final]
    assert len(partial) >= 5, chunks  # streamed, not one answer at the end
    assert all(final.startswith(c) for c in partial)


def test_streamlit_app_renders(node: Node, spaces: dict[str, str]) -> None:
    space_id = spaces["streamlit-hello"]
    running(node, space_id)
    health = node.app_get(space_id, "/_stcore/health")
    assert health.status_code == 200 and health.text == "ok"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = launch_chromium(pw, node, space_id)
        page = browser.new_page()
        try:
            page.goto(node.app_url(space_id), timeout=60_000)
            page.get_by_text("Hello, World!").wait_for(timeout=120_000)  # (a loaded CI machine)
            assert page.get_by_role("heading", name="Streamlit Hello").is_visible()
        except Exception:
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "streamlit-hello.png"))
            (ARTIFACTS / "streamlit-hello.html").write_text(page.content())
            raise
        finally:
            browser.close()


def test_docker_space_gets_build_args_and_build_secrets(node: Node, spaces: dict[str, str]) -> None:
    space_id = spaces["docker-fastapi"]
    running(node, space_id)
    r = node.app_get(space_id, "/")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["message"] == "Howdy from a Docker Space"  # the variable, as a build arg
    assert body["build_token_sha256"] == hashlib.sha256(BUILD_TOKEN.encode()).hexdigest()[:12]
    assert body["user"] == "1000"
    # The secret reached the build step only: not in the image's history, config or env.
    image = subprocess.run(
        ["docker", "images", "-q", "--filter", f"label=org.spaceport.space={space_id}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()[0]
    history = subprocess.run(
        ["docker", "history", "--no-trunc", image], capture_output=True, text=True
    ).stdout
    config = subprocess.run(
        ["docker", "image", "inspect", image], capture_output=True, text=True
    ).stdout
    assert BUILD_TOKEN not in history and BUILD_TOKEN not in config


def test_static_site_is_served_as_is(node: Node, spaces: dict[str, str]) -> None:
    space_id = spaces["static-site"]
    running(node, space_id)
    page = node.app_get(space_id, "/")
    assert page.status_code == 200 and "<h1>Hello from a static Space</h1>" in page.text
    css = node.app_get(space_id, "/style.css")
    assert css.status_code == 200 and "text/css" in css.headers["content-type"]
    assert (
        node.app_get(space_id, "/script.js").text
        == (EXAMPLES / "static-site/script.js").read_text()
    )


def test_gpu_nvml_app_reports_no_gpu_here(node: Node, spaces: dict[str, str]) -> None:
    """On this CPU-only machine the NVML app runs and says why it sees no GPU; the same
    image lists real GPUs on a GPU host (tests/builder/test_gpu.py, `make test-gpu`)."""
    space_id = spaces["gpu-nvml"]
    running(node, space_id)
    body = node.app_get(space_id, "/").json()
    assert body["gpus"] == [] and body["error"].startswith("NVML: "), body
    assert body["space"] == space_id


def test_code_only_push_starts_from_the_compiled_dependencies(
    node: Node, spaces: dict[str, str], tmp_path: Path
) -> None:
    """After the first deploy the worker compiled gradio-chat's dependencies (meanwhile, the
    tests above ran); a code-only push then builds only the code on top of that stage."""
    space_id = spaces["gradio-chat"]
    first = wait_compiled(space_id)
    app = variant(tmp_path, "gradio-chat")
    code = (app / "app.py").read_text().replace("You said", "You wrote")
    (app / "app.py").write_text(f"{code}\n# {uuid.uuid4().hex}\n")  # never built before
    assert node.push(app, space_id).returncode == 0
    report = wait_deployed(node, space_id).cache_report
    assert report["deps_stage"] == "deps-compiled"
    assert report["dependencies_cached"] is True
    assert any("compileall" in step for step in report["cached"])
    assert report["built"] == ["COPY --chown=1000:1000 . /home/user/app"]
    # On the SDK stage the first build's dependencies were compiled on (the plain one when
    # that build came before the node's compiled Gradio): the same layers, bytecode included.
    assert report["sdk_stage"] == first["sdk_stage"], (first, report)


def wait_compiled(space_id: str, timeout: float = 180) -> dict[str, Any]:
    """The cache report of the Space's first build once its compiled stages exist (built with
    it, or by the warm task after its deploy)."""
    deadline = time.monotonic() + timeout
    while True:
        report = builds(space_id)[0].cache_report
        if report["deps_stage"] == "deps-compiled" or "warmed" in report:
            return report
        assert time.monotonic() < deadline, f"never warmed: {report}"
        time.sleep(0.5)


def test_a_new_dependency_set_starts_from_the_shared_compiled_sdk(
    node: Node, spaces: dict[str, str], tmp_path: Path
) -> None:
    """Once any Space's Gradio was compiled (gradio-chat's, above), a new Space with
    requirements of its own reuses the SDK layers: it installs only its own requirements and
    its image holds Gradio's bytecode on its first deploy."""
    wait_compiled(spaces["gradio-chat"])
    space_id = node.create_space(unique("sdkshare"), sdk="gradio")
    requirements = f"# {uuid.uuid4().hex}\nsix\n"  # a dependency set never built before
    app = variant(tmp_path, "gradio-hello", **{"requirements.txt": requirements})
    try:
        assert node.push(app, space_id).returncode == 0
        build = wait_deployed(node, space_id)
        report = build.cache_report
        assert report["sdk_stage"] == "sdk-compiled", report
        assert report["deps_stage"] == "deps", report  # its own set: not compiled yet
        assert any(s.endswith('uv pip install "gradio"') for s in report["cached"]), report
        assert any("-r /tmp/requirements.txt" in step for step in report["built"]), report
        probe = (
            "import importlib.util, os, sys\n"
            "specs = [importlib.util.find_spec(m) for m in ('gradio', 'gradio.blocks', 'six')]\n"
            "print(' '.join(str(os.path.exists(s.cached)) for s in specs))"
        )
        out = subprocess.run(
            ["docker", "run", "--rm", "--entrypoint", "python", str(build.image), "-c", probe],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert out.stdout.split() == ["True", "True", "False"], out.stdout + out.stderr
        assert node.app_get(space_id, "/config").status_code == 200
    finally:
        clean_later([space_id])
