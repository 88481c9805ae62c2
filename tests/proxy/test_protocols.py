"""What apps need from the proxy, through the real entry point (nginx) to real containers:
websockets, server-sent events delivered as they happen, 100 MB uploads streamed, long
requests, headers from the README, private Spaces, metrics and the sleep timer's clock."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Iterator

import httpx
import pytest
from websockets.asyncio.client import connect

from tests.conftest import PUBLIC_PORT, Node, unique
from tests.proxy.conftest import Fleet, proxy_url, run_async, via_proxy

pytestmark = pytest.mark.slow
MB = 1024 * 1024


def test_websocket_echo_through_the_proxy(node: Node, fleet: Fleet) -> None:
    async def talk() -> list[str]:
        uri = f"ws://{node.app_host(fleet.protocol)}/ws"
        async with connect(uri, host="127.0.0.1", port=PUBLIC_PORT, open_timeout=10) as ws:
            answers = []
            for word in ("hello", "x" * 70_000):
                await ws.send(word)
                answers.append(str(await asyncio.wait_for(ws.recv(), 10)))
            return answers

    hello, big = run_async(talk)
    assert hello == "echo:hello"
    assert big == "echo:" + "x" * 70_000


def test_sse_first_event_arrives_before_the_response_ends(node: Node, fleet: Fleet) -> None:
    started = time.monotonic()
    headers = {"Host": node.app_host(fleet.protocol), "Accept": "text/event-stream"}
    with httpx.stream("GET", proxy_url("/sse"), headers=headers, timeout=30) as resp:
        assert resp.headers["content-type"].startswith("text/event-stream")
        chunks = resp.iter_bytes()
        first = next(chunks)
        first_at = time.monotonic() - started
        rest = b"".join(chunks)
    assert b"data: first" in first and b"last" not in first
    assert first_at < 1.5, f"first event took {first_at:.2f}s: the proxy buffered it"
    assert b"data: last" in rest


def _body(total: int, chunk: int = MB) -> Iterator[bytes]:
    block = bytes(range(256)) * (chunk // 256)
    for _ in range(total // chunk):
        yield block


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_100_mb_upload_is_streamed_to_the_app(node: Node, fleet: Fleet, chunked: bool) -> None:
    total = 100 * MB
    digest = hashlib.sha256()
    for block in _body(total):
        digest.update(block)
    headers = {} if chunked else {"Content-Length": str(total)}
    started = time.monotonic()
    resp = via_proxy(
        node, fleet.protocol, "POST", "/upload", content=_body(total), headers=headers, timeout=120
    )
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"bytes": total, "sha256": digest.hexdigest()}
    print(
        f"100 MB upload ({'chunked' if chunked else 'length'}): {time.monotonic() - started:.2f}s"
    )


def test_long_request_is_not_cut(node: Node, fleet: Fleet) -> None:
    resp = via_proxy(node, fleet.protocol, path="/slow?s=6", timeout=60)
    assert resp.status_code == 200 and resp.json() == {"slept": 6.0}


def test_readme_headers_reach_the_browser(node: Node, fleet: Fleet) -> None:
    custom = via_proxy(node, fleet.protocol)
    assert custom.headers["cross-origin-embedder-policy"] == "require-corp"
    assert custom.headers["cross-origin-opener-policy"] == "same-origin"
    assert "x-not-allowed" not in custom.headers
    assert "x-frame-options" not in custom.headers  # embeddable by default
    framed_off = via_proxy(node, fleet.noembed)
    assert framed_off.headers["content-security-policy"] == "frame-ancestors 'none'"
    assert framed_off.headers["x-frame-options"] == "DENY"


def test_embed_api_gives_the_snippets(node: Node, fleet: Fleet) -> None:
    with node.api() as c:
        g = c.get(f"/api/v1/spaces/{fleet.gradio}/embed").json()
        s = c.get(f"/api/v1/spaces/{fleet.streamlit}/embed").json()
        n = c.get(f"/api/v1/spaces/{fleet.noembed}/embed").json()
    app = node.app_url(fleet.gradio)
    assert g["iframe"].startswith(f'<iframe src="{app}"')
    assert g["web_component"].endswith(f'<gradio-app src="{app}"></gradio-app>')
    script = httpx.get(
        g["script_url"].replace(app, proxy_url("/")), headers={"Host": node.app_host(fleet.gradio)}
    )
    assert script.status_code == 200 and script.headers["access-control-allow-origin"] == "*"
    assert "/assets/index-" in script.text
    assert "?embed=true" in s["iframe"]
    assert n["embeddable"] is False and "iframe" not in n
    with node.api(token=None) as anon:
        assert anon.get(f"/api/v1/spaces/{fleet.private}/embed").status_code == 404


def test_private_space_only_for_its_owner(node: Node, fleet: Fleet) -> None:
    from spaceport.db.session import session_scope
    from spaceport.services.users import create_user

    with session_scope() as session:
        _, stranger = create_user(session, unique("stranger"))
    anonymous = via_proxy(node, fleet.private)
    unknown = via_proxy(node, f"admin/{unique('nothing-here')}")
    assert anonymous.status_code == unknown.status_code == 404
    assert "Sign in" in anonymous.text
    assert anonymous.headers["x-spaceport-status"] == "1"
    as_json = via_proxy(node, fleet.private, headers={"Accept": "application/json"})
    assert as_json.status_code == 404 and as_json.json() == {"error": "Space not found"}
    other = via_proxy(node, fleet.private, headers={"Authorization": f"Bearer {stranger}"})
    assert other.status_code == 404
    assert via_proxy(node, fleet.private, path="/gradio.js").status_code == 404
    owner = {"Authorization": f"Bearer {node.token}"}
    page = via_proxy(node, fleet.private, headers=owner)
    assert page.status_code == 200 and "Protocol app" in page.text
    seen = via_proxy(node, fleet.private, path="/headers", headers=owner).json()
    assert "authorization" not in seen, "the owner's token must not reach the app"
    assert seen["host"] == node.app_host(fleet.private)

    # gradio_client sends the token as x-hf-authorization: it opens the private app too, and
    # no app (private or public) ever sees a Spaceport token; the app's own auth passes.
    as_hf = {"x-hf-authorization": f"Bearer {node.token}"}
    assert via_proxy(node, fleet.private, headers=as_hf).status_code == 200
    stranger_hf = {"x-hf-authorization": f"Bearer {stranger}"}
    assert via_proxy(node, fleet.private, headers=stranger_hf).status_code == 404
    seen = via_proxy(node, fleet.private, path="/headers", headers=as_hf).json()
    assert "x-hf-authorization" not in seen
    own = {**as_hf, "Authorization": "Basic YXBwOnVzZXI="}
    seen = via_proxy(node, fleet.protocol, path="/headers", headers=own).json()
    assert "x-hf-authorization" not in seen
    assert seen["authorization"] == "Basic YXBwOnVzZXI="


def _metric(text: str, name: str, space_id: str) -> float:
    for line in text.splitlines():
        if line.startswith(f'{name}{{space="{space_id}"}}'):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} for {space_id} not in metrics:\n{text[:2000]}")


def test_traffic_metrics_and_last_request_time(node: Node, fleet: Fleet) -> None:
    from spaceport.db.models import Space
    from spaceport.db.session import session_scope

    def last_request() -> object:
        owner, name = fleet.noembed.split("/")
        with session_scope() as session:
            space = session.query(Space).filter_by(owner=owner, name=name).one()
            return space.last_request_at

    with node.api(token=None) as anon:
        before = anon.get("/api/v1/metrics").text
    start_requests = _metric(before, "spaceport_space_requests_total", fleet.noembed)
    start_errors = _metric(before, "spaceport_space_errors_total", fleet.noembed)
    stamp_before = last_request()
    for _ in range(5):
        assert via_proxy(node, fleet.noembed).status_code == 200
    assert via_proxy(node, fleet.noembed, path="/status/503").status_code == 503
    with node.api(token=None) as anon:
        resp = anon.get("/api/v1/metrics")
    text = resp.text
    assert resp.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert _metric(text, "spaceport_space_requests_total", fleet.noembed) == start_requests + 6
    assert _metric(text, "spaceport_space_errors_total", fleet.noembed) == start_errors + 1
    assert f'spaceport_space_request_duration_seconds_count{{space="{fleet.noembed}"}}' in text
    assert fleet.private not in text  # private Spaces only for who may see them
    with node.api() as admin:
        assert fleet.private in admin.get("/api/v1/metrics").text
    deadline = time.monotonic() + 60  # the reconciler's pass (2 s in tests) records it
    while time.monotonic() < deadline and last_request() == stamp_before:
        time.sleep(0.3)
    assert last_request() != stamp_before
