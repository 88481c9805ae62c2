"""Console test fixtures: real Chromium (Playwright) against the session's real node.

Chromium resolves `*.localhost` itself, so the console and the apps it frames are reached by
their public URLs through the proxy, as a person's browser would.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CHROMIUM_ARGS, PUBLIC_PORT, Node, need

CHROMIUM = "/usr/bin/chromium"
CONSOLE = f"http://localhost:{PUBLIC_PORT}"
APPS = Path(__file__).parent / "apps"


@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    need(shutil.which(CHROMIUM) is not None or Path(CHROMIUM).exists(), f"Chromium at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


def sign_in(browser: Any, token: str) -> Any:
    """A fresh browser context signed in through the sign-in form, like a person."""
    context = browser.new_context(viewport={"width": 1360, "height": 900})
    context.set_default_timeout(30_000)
    page = context.new_page()
    page.goto(f"{CONSOLE}/login")
    page.fill("#token", token)
    page.click("button[type=submit]")
    page.wait_for_url(f"{CONSOLE}/")
    return page


@pytest.fixture(scope="module")
def admin_page(node: Node, browser: Any) -> Iterator[Any]:
    page = sign_in(browser, node.token)
    yield page
    page.context.close()


def shot(page: Any, artifacts: Path, name: str, *, full: bool = True) -> Path:
    path = artifacts / f"console-{name}.png"
    page.screenshot(path=str(path), full_page=full)
    return path
