"""The proxy tests' Spaces, built once for the whole folder and pushed all at once.

- gradio:    examples/gradio-hello (iframe, web component, path mode)
- streamlit: apps/streamlit_echo (websocket session, iframe with ?embed=true, uploads)
- protocol:  apps/protocol with `custom_headers` (websocket echo, SSE, 100 MB upload, sleep)
- private:   apps/protocol as a private Space (token, cookie handshake, 404 to others)
- noembed:   apps/protocol with `disable_embedding: true`

Plus Chromium through Playwright (ENVIRONMENT.md's flags) and a small web server on another
origin (127.0.0.1) that serves the embedding pages.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import http.server
import shutil
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from tests.conftest import (
    ARTIFACTS,
    CHROMIUM_ARGS,
    EXAMPLES,
    IN_CI,
    PUBLIC_PORT,
    Node,
    need,
    unique,
)

T = TypeVar("T")
APPS = Path(__file__).parent / "apps"
SHOTS = ARTIFACTS / "proxy"
CHROMIUM = Path("/usr/bin/chromium")
CUSTOM_HEADERS = """custom_headers:
  cross-origin-embedder-policy: require-corp
  cross-origin-opener-policy: same-origin
  x-not-allowed: nope
"""


@dataclass(frozen=True)
class Fleet:
    gradio: str
    streamlit: str
    protocol: str
    private: str
    noembed: str


def _with_readme_lines(tmp: Path, src: Path, extra: str) -> Path:
    """A copy of `src` whose README front matter gains `extra` (YAML lines)."""
    dst = tmp / f"{src.name}-{unique('v')}"
    shutil.copytree(src, dst)
    readme = dst / "README.md"
    text = readme.read_text()
    readme.write_text(text.replace("\n---\n", "\n" + extra + "---\n", 1))
    return dst


@pytest.fixture(scope="package")
def fleet(node: Node, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    tmp = tmp_path_factory.mktemp("proxy-apps")
    plan: dict[str, tuple[Path, str, dict[str, Any]]] = {
        "gradio": (EXAMPLES / "gradio-hello", "gradio", {}),
        "streamlit": (APPS / "streamlit_echo", "streamlit", {}),
        "protocol": (_with_readme_lines(tmp, APPS / "protocol", CUSTOM_HEADERS), "docker", {}),
        "private": (APPS / "protocol", "docker", {"private": True}),
        "noembed": (
            _with_readme_lines(tmp, APPS / "protocol", "disable_embedding: true\n"),
            "docker",
            {},
        ),
    }
    ids = {
        key: node.create_space(unique(f"px-{key}"), sdk=sdk, **kw)
        for key, (_, sdk, kw) in plan.items()
    }
    for key, (src, _, _) in plan.items():
        push = node.push(src, ids[key])
        assert push.returncode == 0, push.stderr
    for space_id in ids.values():
        node.wait_stage(space_id, {"RUNNING"}, timeout=400)
    yield Fleet(**ids)
    from huggingface_hub import HfApi

    api = HfApi(endpoint=node.url, token=node.token)
    for space_id in ids.values():
        api.delete_repo(space_id, repo_type="space", missing_ok=True)


def proxy_url(path: str = "/") -> str:
    return f"http://127.0.0.1:{PUBLIC_PORT}{path}"


def via_proxy(
    node: Node, space_id: str, method: str = "GET", path: str = "/", **kw: Any
) -> httpx.Response:
    """A request to the Space's public URL through the proxy (Host header: see ENVIRONMENT.md)."""
    headers = {"Host": node.app_host(space_id), **kw.pop("headers", {})}
    return httpx.request(
        method, proxy_url(path), headers=headers, timeout=kw.pop("timeout", 30), **kw
    )


# --- a web page on another origin ---------------------------------------------------------


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


@dataclass
class OtherOrigin:
    """A plain web server on 127.0.0.1 (not an app host, not the console): embedding pages."""

    root: Path
    port: int

    def page(self, name: str, body: str) -> str:
        (self.root / name).write_text(f"<!doctype html><meta charset='utf-8'><body>{body}</body>")
        return f"http://127.0.0.1:{self.port}/{name}"


@pytest.fixture(scope="package")
def other_origin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OtherOrigin]:
    root = tmp_path_factory.mktemp("other-origin")
    handler = functools.partial(_Quiet, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield OtherOrigin(root, server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


# --- Chromium -----------------------------------------------------------------------------


@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    need(CHROMIUM.exists(), f"Chromium at {CHROMIUM} (apt-get install -y chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # pragma: no cover - the test extra installs it
        if IN_CI:
            raise
        pytest.skip("playwright is not installed")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


def goto_ready(page: Any, url: str, ready: Callable[[float], None], timeout_ms: float) -> None:
    """`page.goto(url)`, then `ready(ms)` within `timeout_ms`; loaded again (twice at most) when
    one of its requests failed with net::ERR_NETWORK_CHANGED meanwhile. A container's network
    interface appearing or going on this machine makes Chromium abort what it is loading, and
    such a page stays empty (CI: Gradio under a path prefix); a visitor's browser elsewhere
    never sees that. Any other failure is the test's."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    changed: list[str] = []
    page.on(
        "requestfailed",
        lambda r: changed.append(r.url) if "ERR_NETWORK_CHANGED" in (r.failure or "") else None,
    )
    page.goto(url)
    deadline, reloads = time.monotonic() + timeout_ms / 1000, 0
    while True:
        try:
            ready(5_000)
            return
        except PlaywrightTimeout:
            if changed and reloads < 2:
                changed.clear()
                reloads += 1
                page.reload()
            elif time.monotonic() > deadline:
                raise


@contextmanager
def watched(page: Any, shots: Path, name: str) -> Iterator[None]:
    """What the page's own console, its failed and refused requests and its text said, in the
    failure's message (and a screenshot), when a step inside fails: a page that never renders
    on a loaded machine says why in CI's log."""
    said: list[str] = []
    page.on("console", lambda m: said.append(f"console {m.type}: {m.text[:300]}"))
    page.on("pageerror", lambda e: said.append(f"page error: {str(e)[:300]}"))
    page.on("requestfailed", lambda r: said.append(f"failed {r.url}: {r.failure}"))
    page.on(
        "response",
        lambda r: said.append(f"{r.status} {r.url}") if r.status >= 400 else None,
    )
    try:
        yield
    except Exception as exc:
        try:
            page.screenshot(path=str(shots / f"{name}-failed.png"))
            text = page.evaluate("document.body ? document.body.innerText : ''")[:600]
        except Exception as why:  # the page itself is gone
            text = f"(unreadable: {why})"
        seen = "\n".join(said[-30:])
        raise AssertionError(f"{exc}\npage at {page.url}, its text: {text!r}\n{seen}") from exc


@pytest.fixture
def shots() -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    return SHOTS


def run_async(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion from sync test code, on a thread of its own: Playwright's
    sync API keeps an event loop running on the main thread, where asyncio.run() refuses."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(make())).result()
