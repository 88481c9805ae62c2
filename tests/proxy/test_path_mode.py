"""Path mode (sites without wildcard DNS): apps under `{apps origin}/{owner}/{name}/`, with
Gradio's root path and Streamlit's base URL set by the platform, so that every asset, API
call, websocket and upload works under the prefix, in a real browser.

The apps are the images the node built for the fleet, started here with the environment the
runtime gives them in path mode (`runtime.env.app_env`), behind a proxy
of the node's backend in path mode.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import httpx
import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from spaceport.lifecycle.proxy_routes import route_for
from spaceport.proxy import make_proxy
from spaceport.proxy.resolver import serve_in_thread
from spaceport.settings import Settings
from tests.conftest import Node, free_port
from tests.proxy.conftest import Fleet, goto_ready, run_async, watched

pytestmark = pytest.mark.slow
LABEL = "org.spaceport.test"


@dataclass
class PathStack:
    settings: Settings
    urls: dict[str, str]


def _start_app(client: docker.DockerClient, settings: Settings, space_id: str) -> tuple[Any, str]:
    """Run the Space's image as the runtime would in path mode; returns (container, upstream)."""
    from spaceport.db.models import Deployment, Space
    from spaceport.db.session import session_scope
    from spaceport.lifecycle.env import app_env, app_port
    from spaceport.stages import DeploymentStatus

    owner, name = space_id.split("/")
    with session_scope() as session:
        space = session.scalar(select(Space).where(Space.owner == owner, Space.name == name))
        assert space is not None
        image = session.scalar(
            select(Deployment.image).where(
                Deployment.space_id == space.id, Deployment.status == DeploymentStatus.ACTIVE
            )
        )
        env, port = app_env(session, settings, space, None), app_port(space)
    container = client.containers.run(
        image,
        detach=True,
        name=f"px-path-{name}-{uuid.uuid4().hex[:6]}",
        environment=env,
        user="1000:1000",
        ports={f"{port}/tcp": ("127.0.0.1", None)},
        labels={LABEL: "proxy-path-mode"},
    )
    container.reload()
    host_port = container.attrs["NetworkSettings"]["Ports"][f"{port}/tcp"][0]["HostPort"]
    return container, f"127.0.0.1:{host_port}"


def _wait_http(upstream: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://{upstream}/", timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"{upstream} never answered")


@pytest.fixture(scope="module")
def path_stack(
    node: Node, fleet: Fleet, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PathStack]:
    from spaceport.db.models import Space
    from spaceport.db.session import session_scope

    port = free_port()
    settings = node.settings.model_copy(
        update={
            "data": tmp_path_factory.mktemp("path-mode"),
            "routing": "path",
            "url": f"http://localhost:{port}",
            "listen": f":{port}",
            "resolver_port": free_port(),  # its own resolver, for its own address table
        }
    )
    client = docker.from_env()
    proxy = make_proxy(settings)  # the node's backend, on a port of its own
    resolver = serve_in_thread(settings)
    containers = []
    try:
        routes, urls = [], {}
        for key in ("gradio", "streamlit"):
            space_id = getattr(fleet, key)
            container, upstream = _start_app(client, settings, space_id)
            containers.append(container)
            _wait_http(upstream)
            owner, name = space_id.split("/")
            with session_scope() as session:
                space = session.scalar(
                    select(Space).where(Space.owner == owner, Space.name == name)
                )
                assert space is not None
                routes.append(route_for(settings, space, upstream))
            urls[key] = settings.app_url(owner, name)
        run_async(proxy.start)
        run_async(lambda: proxy.set_routes(routes))
        yield PathStack(settings, urls)
    finally:
        for c in containers:
            c.remove(force=True)
        run_async(proxy.stop)
        resolver.close()


def test_path_mode_urls_live_on_the_apps_origin(path_stack: PathStack) -> None:
    for url in path_stack.urls.values():
        assert url.startswith(path_stack.settings.apps_origin + "/admin/")
        assert not url.startswith(path_stack.settings.url)  # never the console's origin


def test_gradio_under_a_path_prefix(path_stack: PathStack, browser: Any, shots: Path) -> None:
    url = path_stack.urls["gradio"]
    page = browser.new_page(viewport={"width": 1000, "height": 700})
    outside: list[str] = []
    prefix = url.rstrip("/")
    page.on(
        "request",
        lambda r: (
            outside.append(r.url)
            if r.url.startswith(path_stack.settings.apps_origin) and not r.url.startswith(prefix)
            else None
        ),
    )
    with watched(page, shots, "path-mode-gradio"):
        name = page.get_by_label("Name")
        goto_ready(page, url, lambda ms: name.wait_for(timeout=ms), 120_000)
        name.fill("Path", timeout=30_000)
        page.get_by_role("button", name="Submit").click(timeout=120_000)  # a loaded CI machine
        expect(page.get_by_label("Greeting")).to_have_value("Hello, Path!", timeout=30_000)
    assert not outside, f"requests escaped the app's prefix: {outside[:5]}"
    page.screenshot(path=str(shots / "path-mode-gradio.png"))
    page.close()


def test_streamlit_websocket_and_upload_under_a_path_prefix(
    path_stack: PathStack, browser: Any, shots: Path, tmp_path: Path
) -> None:
    url = path_stack.urls["streamlit"]
    page = browser.new_page(viewport={"width": 1000, "height": 700})
    sockets: list[str] = []
    page.on("websocket", lambda ws: sockets.append(ws.url))
    with watched(page, shots, "path-mode-streamlit"):
        page.goto(url)
        box = page.get_by_label("Say something")
        box.fill("under a prefix", timeout=60_000)
        box.press("Enter")
        page.get_by_text("Echo: under a prefix").wait_for(timeout=30_000)
    prefix = url.removeprefix("http://").rstrip("/")
    assert any(s == f"ws://{prefix}/_stcore/stream" for s in sockets), sockets
    upload = tmp_path / "data.bin"
    upload.write_bytes(b"x" * 123_456)
    page.locator("input[type=file]").set_input_files(str(upload))
    page.get_by_text("Uploaded 123456 bytes").wait_for(timeout=30_000)
    page.screenshot(path=str(shots / "path-mode-streamlit.png"))
    page.close()
