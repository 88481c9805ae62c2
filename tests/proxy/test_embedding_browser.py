"""Apps embedded in a page of another origin, in real Chromium, with no internet: a Gradio
app by iframe and by web component (also both on one page, and two web components on one
page), a Streamlit app by iframe; each renders, takes input and shows the app's answer. An
app with `disable_embedding` does not render in a frame."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.conftest import Node
from tests.proxy.conftest import Fleet, OtherOrigin

pytestmark = pytest.mark.slow


def _embed(node: Node, space_id: str) -> dict[str, Any]:
    with node.api() as c:
        resp = c.get(f"/api/v1/spaces/{space_id}/embed")
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def test_gradio_in_an_iframe_on_another_origin(
    node: Node, fleet: Fleet, other_origin: OtherOrigin, browser: Any, shots: Path
) -> None:
    snippet = _embed(node, fleet.gradio)["iframe"].replace("<iframe ", '<iframe id="app" ', 1)
    page = browser.new_page(viewport={"width": 1000, "height": 800})
    page.goto(other_origin.page("gradio-iframe.html", snippet))
    frame = page.frame_locator("#app")
    frame.get_by_label("Name").fill("Ada", timeout=120_000)  # Gradio front end, busy machine
    frame.get_by_role("button", name="Submit").click()
    expect(frame.get_by_label("Greeting")).to_have_value("Hello, Ada!", timeout=30_000)
    page.screenshot(path=str(shots / "embed-gradio-iframe.png"))
    page.close()


def test_gradio_web_component_on_another_origin(
    node: Node, fleet: Fleet, other_origin: OtherOrigin, browser: Any, shots: Path
) -> None:
    snippet = _embed(node, fleet.gradio)["web_component"]
    page = browser.new_page(viewport={"width": 1000, "height": 800})
    failed: list[str] = []
    # The Gradio client aborts its own event stream once the answer is in (net::ERR_ABORTED);
    # anything else (CORS refusals, blocked scripts) is a failure.
    page.on(
        "requestfailed",
        lambda r: None if "ERR_ABORTED" in (r.failure or "") else failed.append(r.url),
    )
    page.goto(other_origin.page("gradio-web-component.html", f"<h1>My blog</h1>{snippet}"))
    page.get_by_label("Name").fill("Grace", timeout=120_000)
    page.get_by_role("button", name="Submit").click()
    expect(page.get_by_label("Greeting")).to_have_value("Hello, Grace!", timeout=30_000)
    assert not failed, failed
    assert page.evaluate("location.origin") == f"http://127.0.0.1:{other_origin.port}"
    page.screenshot(path=str(shots / "embed-gradio-web-component.png"))
    page.close()


def _answers(page: Any, embed: str, name: str) -> None:
    """Scroll to one embed (`<gradio-app>` loads once it is in view), type a name, click
    Submit, see the app's greeting in that embed."""
    page.locator(embed).scroll_into_view_if_needed()
    is_frame = page.locator(embed).evaluate("e => e.tagName") == "IFRAME"
    scope = page.frame_locator(embed) if is_frame else page.locator(embed)
    scope.get_by_label("Name").fill(name, timeout=120_000)  # Gradio front end, busy machine
    scope.get_by_role("button", name="Submit").click()
    expect(scope.get_by_label("Greeting")).to_have_value(f"Hello, {name}!", timeout=30_000)


def test_gradio_iframe_and_web_component_on_one_page(
    node: Node, fleet: Fleet, other_origin: OtherOrigin, browser: Any, shots: Path
) -> None:
    """Both snippets of one Space pasted into one blog post: each embed answers."""
    snippets = _embed(node, fleet.gradio)
    iframe = snippets["iframe"].replace("<iframe ", '<iframe id="app" ', 1)
    body = f'<h1>My blog</h1>{iframe}<div id="wc">{snippets["web_component"]}</div>'
    page = browser.new_page(viewport={"width": 1000, "height": 800})
    page.goto(other_origin.page("gradio-iframe-and-web-component.html", body))
    _answers(page, "#app", "Ada")
    _answers(page, "#wc", "Grace")
    _answers(page, "#app", "Alan")
    page.screenshot(path=str(shots / "embed-gradio-iframe-and-web-component.png"))
    page.close()


def test_two_gradio_web_components_of_one_space_on_one_page(
    node: Node, fleet: Fleet, other_origin: OtherOrigin, browser: Any, shots: Path
) -> None:
    """The web component snippet pasted twice into one page: each copy answers on its own."""
    snippet = _embed(node, fleet.gradio)["web_component"]
    body = (
        f'<h1>My blog</h1><div id="one">{snippet}</div><p>Again:</p><div id="two">{snippet}</div>'
    )
    page = browser.new_page(viewport={"width": 1000, "height": 800})
    page.goto(other_origin.page("gradio-two-web-components.html", body))
    _answers(page, "#one", "Grace")
    _answers(page, "#two", "Linus")
    page.screenshot(path=str(shots / "embed-gradio-two-web-components.png"))
    page.close()


def test_streamlit_in_an_iframe_on_another_origin(
    node: Node, fleet: Fleet, other_origin: OtherOrigin, browser: Any, shots: Path
) -> None:
    snippet = _embed(node, fleet.streamlit)["iframe"].replace("<iframe ", '<iframe id="app" ', 1)
    assert "?embed=true" in snippet
    page = browser.new_page(viewport={"width": 1000, "height": 800})
    page.goto(other_origin.page("streamlit-iframe.html", snippet))
    frame = page.frame_locator("#app")
    box = frame.get_by_label("Say something")
    box.fill("hello from the blog", timeout=60_000)
    box.press("Enter")
    frame.get_by_text("Echo: hello from the blog").wait_for(timeout=60_000)
    page.screenshot(path=str(shots / "embed-streamlit-iframe.png"))
    page.close()


def test_disable_embedding_refuses_the_frame(
    node: Node, fleet: Fleet, other_origin: OtherOrigin, browser: Any, shots: Path
) -> None:
    allowed, refused = node.app_url(fleet.protocol), node.app_url(fleet.noembed)
    body = (
        f'<iframe id="allowed" src="{allowed}"></iframe>'
        f'<iframe id="refused" src="{refused}"></iframe>'
    )
    page = browser.new_page()
    page.goto(other_origin.page("noembed.html", body))
    page.frame_locator("#allowed").locator("#hello").wait_for(timeout=30_000)
    page.wait_for_timeout(1000)
    assert page.frame_locator("#refused").locator("#hello").count() == 0
    frame_urls = [f.url for f in page.frames]
    assert not any(u.startswith(refused) for u in frame_urls), frame_urls
    page.screenshot(path=str(shots / "embed-disabled.png"))
    page.close()


def test_app_responses_vary_by_origin(node: Node, fleet: Fleet) -> None:
    """Gradio answers a request with an Origin with Access-Control-Allow-Origin, and one
    without without it: both copies must say `Vary: Origin`, or a browser that fetched an
    asset for the app's own page (the iframe) may reuse it for the web component of the same
    Space on a page of another origin, where the missing CORS header fails the script."""
    page = node.app_get(fleet.gradio, "/")
    assert page.status_code == 200, page.text[:300]
    assets = re.findall(r'(/assets/[^"\']+\.(?:js|css))', page.text)
    assert assets, "no Gradio assets on the app's page"
    other = "http://127.0.0.1:9"
    for path in [*assets[:2], "/config"]:
        plain = node.app_get(fleet.gradio, path)
        cors = node.app_get(fleet.gradio, path, headers={"Origin": other})
        assert plain.status_code == cors.status_code == 200, path
        assert cors.headers.get("access-control-allow-origin") == other, path
        for r in (plain, cors):
            vary = [v.strip().lower() for v in r.headers.get("vary", "").split(",")]
            assert "origin" in vary, f"{path}: Vary is {r.headers.get('vary')!r}"
