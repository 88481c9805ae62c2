"""HTTPS through nginx with certificates from a real ACME CA: Debian's pebble.

Its own nginx (an https SPACEPORT_URL; not the shared node, which stays HTTP), two small web
servers standing for the console (the API port) and one Space's app, and pebble, whose HTTP-01
validations dial our plain HTTP port (its `httpPort`) at names that /etc/hosts maps to
loopback. Certificates are verified against pebble's root, fetched from its management port.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import http.server
import shutil
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509

from spaceport.proxy.base import Route
from spaceport.proxy.nginx import NginxProxy
from spaceport.proxy.tls import keep_certificates, push_certificates
from spaceport.proxy.tls_store import load_all
from spaceport.services.domains import app_host_view
from spaceport.settings import Settings
from tests.conftest import PUBLIC_PORT, hosts_entries, need
from tests.tls.pebble import chromium_trusting_pebble, pebble, pebble_root, self_signed

PORT = PUBLIC_PORT + 40  # HTTPS; +1 the "API", +2 plain HTTP, +3 the app, +4..+6 pebble
CONSOLE = "console.sp.test"
APP = "demo-one.apps.sp.test"
LIVE = "live-one.apps.sp.test"  # a second Space's app: a websocket echo (PORT + 7)
NEW = "new-one.apps.sp.test"  # a Space routed in one test, before its certificate exists


@dataclass
class Site:
    settings: Settings
    proxy: NginxProxy
    pebble_root: Path
    tmp: Path
    api_ca: Path  # pebble's own API certificate (its management port)


STREAMS_PAGE = """<!doctype html><title>six streams</title><script>
// Six long-lived streams, as six embeds of a Gradio or Streamlit app hold, then one more request.
window.result = (async () => {
  const opened = await Promise.all([...Array(6).keys()].map((i) => new Promise((ok) => {
    const s = new EventSource('/stream?i=' + i); s.onmessage = () => ok(s);
  })));
  const t0 = performance.now();
  const answer = await Promise.race([
    fetch('/?after-streams').then((r) => r.text(), (e) => 'failed: ' + e),
    new Promise((ok) => setTimeout(() => ok('stalled'), 5000)),  // the streams last 20 s
  ]);
  const ms = performance.now() - t0;
  opened.forEach((s) => s.close());
  return {answer, ms, protocol: performance.getEntriesByType('navigation')[0].nextHopProtocol};
})();
</script>"""


class _Says(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path.startswith("/stream?"):  # server-sent events until the client goes
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            try:
                for _ in range(200):
                    self.wfile.write(b"data: tick\n\n")
                    self.wfile.flush()
                    time.sleep(0.1)
            except OSError:
                pass
            return
        page = self.path == "/streams"
        body = (STREAMS_PAGE if page else self.server.says).encode()  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Type", "text/html" if page else "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def _echo(port: int) -> Any:
    """A websocket app that sends back each message it gets."""
    from websockets.sync.server import ServerConnection, serve

    def echo(ws: ServerConnection) -> None:
        for message in ws:
            ws.send(message)

    server = serve(echo, "127.0.0.1", port)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _serve(port: int, says: str) -> http.server.ThreadingHTTPServer:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), _Says)
    server.says = says  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    need(shutil.which("pebble") is not None, "pebble (apt-get install pebble)")
    tmp = tmp_path_factory.mktemp("https")
    servers = [_serve(PORT + 1, "console"), _serve(PORT + 3, "app"), _echo(PORT + 7)]
    settings = Settings(
        data=tmp / "data",
        url=f"https://{CONSOLE}:{PORT}",
        listen=f"127.0.0.1:{PORT}",
        http_listen=f"127.0.0.1:{PORT + 2}",
        api_port=PORT + 1,
        hsts_max_age_s=300,
        secret_key="https-test",
        acme_directory=f"https://localhost:{PORT + 4}/dir",
        acme_ca_bundle=tmp / "pebble-api.pem",
        tls_cert_file=None,
        tls_key_file=None,
    )
    proxy = NginxProxy(settings)
    with hosts_entries(CONSOLE, APP, LIVE, NEW), pebble(tmp, PORT + 4, PORT + 2) as api_ca:
        try:
            asyncio.run(proxy.start())
            routes = [
                Route(space_id="demo/one", hosts=(APP,), upstream=f"127.0.0.1:{PORT + 3}"),
                Route(space_id="live/one", hosts=(LIVE,), upstream=f"127.0.0.1:{PORT + 7}"),
            ]
            asyncio.run(proxy.set_routes(routes))
            assert keep_certificates(settings) == [CONSOLE, APP, LIVE]
            yield Site(settings, proxy, pebble_root(api_ca, PORT + 4, tmp), tmp, api_ca)
        finally:
            asyncio.run(proxy.stop())
            for server in servers:
                server.shutdown()


def _client(site: Site) -> httpx.Client:
    return httpx.Client(http2=True, verify=ssl.create_default_context(cafile=site.pebble_root))


def _served(host: str, cafile: Path | None) -> x509.Certificate:
    """The leaf certificate nginx hands a client that asks for `host`."""
    ctx = ssl.create_default_context(cafile=cafile)
    if cafile is None:
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    with (
        socket.create_connection(("127.0.0.1", PORT)) as raw,
        ctx.wrap_socket(raw, server_hostname=host) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


def _nginx_processes(site: Site) -> set[int]:
    """nginx's master and workers: a reload would replace every worker."""
    master = int((site.settings.run_dir / "nginx.pid").read_text())
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return {master, *map(int, children)}


def test_console_and_app_answer_over_https_with_http2(site: Site) -> None:
    with _client(site) as client:
        console = client.get(f"https://{CONSOLE}:{PORT}/")
        app = client.get(f"https://{APP}:{PORT}/")
    assert (console.status_code, console.text, console.http_version) == (200, "console", "HTTP/2")
    assert (app.status_code, app.text, app.http_version) == (200, "app", "HTTP/2")
    assert app.headers["strict-transport-security"] == "max-age=300"


def test_plain_http_redirects_to_https(site: Site) -> None:
    resp = httpx.get(f"http://{APP}:{PORT + 2}/queue/join?x=1")
    assert resp.status_code == 301
    assert resp.headers["location"] == f"https://{APP}:{PORT}/queue/join?x=1"
    stray = httpx.get(f"http://{APP}:{PORT + 2}/.well-known/acme-challenge/not-a-token")
    assert stray.status_code == 404


def test_renewal_replaces_certificates_near_expiry_without_a_reload(site: Site) -> None:
    """Visitors across the swap: a keep-alive client, a new handshake after another, a
    websocket and a server-sent event stream opened before it; none of them sees an error,
    and the websocket and the stream go on on their old connections afterwards."""
    from websockets.sync.client import connect

    hosts = (CONSOLE, APP, LIVE)
    processes = _nginx_processes(site)
    before = {host: _served(host, site.pebble_root).serial_number for host in hosts}
    stored = load_all(site.settings)
    early = min(b.renew_at() for b in stored.values()) - dt.timedelta(minutes=1)
    assert keep_certificates(site.settings, now=early) == []  # nothing due yet
    done, failures = threading.Event(), []
    seen: list[int] = []
    counts = {"requests": 0, "echoes": 0, "events": 0}
    swapped = [0.0]  # when the renewal had pushed the new certificates
    late = {"echoes": 0, "events": 0}  # those after it, on the connections opened before

    def count(what: str) -> None:
        counts[what] += 1
        if swapped[0] and time.monotonic() > swapped[0]:
            late[what] = late.get(what, 0) + 1

    def keep_alive() -> None:
        with _client(site) as client:
            while not done.is_set():
                try:
                    ok = client.get(f"https://{APP}:{PORT}/").text == "app"
                except httpx.HTTPError as exc:
                    ok = False
                    failures.append(repr(exc))
                count("requests")
                if not ok:
                    failures.append("wrong answer")
                time.sleep(0.005)

    def handshakes() -> None:
        while not done.is_set():
            try:
                seen.append(_served(APP, site.pebble_root).serial_number)
            except (OSError, ssl.SSLError) as exc:
                failures.append(repr(exc))
            time.sleep(0.005)

    def websocket(ws: Any) -> None:
        try:
            while not done.is_set():
                ws.send(f"ping {counts['echoes']}")
                if ws.recv(5) != f"ping {counts['echoes']}":
                    failures.append("websocket: wrong echo")
                count("echoes")
                time.sleep(0.005)
        except Exception as exc:  # a closed socket, a timeout: the websocket dropped
            failures.append(f"websocket: {exc!r}")

    def events(stream: httpx.Response) -> None:
        try:
            for line in stream.iter_lines():
                if line == "data: tick":
                    count("events")
                if done.is_set():
                    return
        except httpx.HTTPError as exc:
            failures.append(f"event stream: {exc!r}")

    trust = ssl.create_default_context(cafile=site.pebble_root)
    with (
        connect(f"wss://{LIVE}:{PORT}/", ssl=trust, open_timeout=30) as ws,  # (a busy CI)
        _client(site) as sse,
        sse.stream("GET", f"https://{APP}:{PORT}/stream?i=0") as stream,
    ):
        visitors = [
            threading.Thread(target=fn, args=args)
            for fn, args in (
                (keep_alive, ()),
                (handshakes, ()),
                (websocket, (ws,)),
                (events, (stream,)),
            )
        ]
        for visitor in visitors:
            visitor.start()
        try:
            due = max(b.renew_at() for b in stored.values()) + dt.timedelta(minutes=1)
            assert keep_certificates(site.settings, now=due) == list(hosts)
            swapped[0] = time.monotonic()
            time.sleep(0.5)
        finally:
            done.set()
            for visitor in visitors:
                visitor.join(10)
    after = {host: _served(host, site.pebble_root).serial_number for host in hosts}
    assert all(after[h] != before[h] for h in before)
    assert after[CONSOLE] == load_all(site.settings)[CONSOLE].serial
    assert _nginx_processes(site) == processes  # no restart, no reload
    assert failures == []  # nothing dropped across the swap
    assert seen[0] == before[APP] and seen[-1] == after[APP]
    assert late["echoes"] > 0 and late["events"] > 0  # still alive on their old connections
    print(f"during the renewal: {counts} ({late} after the swap), {len(seen)} handshakes")


def test_a_new_host_shows_a_page_while_its_first_certificate_is_issued(site: Site) -> None:
    """Before a Space's first certificate exists no browser can be shown a page over HTTPS
    (the console's certificate is served: a certificate error). Its plain HTTP address says the
    certificate is being issued and retries, then takes the visitor to the app over HTTPS; the
    runtime's `domains` says PENDING meanwhile."""
    from playwright.sync_api import sync_playwright

    routes = asyncio.run(site.proxy.get_all_routes())
    new = Route(space_id="new/one", hosts=(NEW,), upstream=f"127.0.0.1:{PORT + 3}")
    asyncio.run(site.proxy.set_routes([*routes.values(), new]))
    try:
        assert app_host_view(site.settings, NEW)["stage"] == "PENDING"
        # over HTTPS the console's certificate: a browser's ERR_CERT_COMMON_NAME_INVALID (the
        # test's Chromium ignores errors for pebble's chains, so a client that checks names)
        with pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch"):
            _served(NEW, site.pebble_root)
        waiting = httpx.get(f"http://{NEW}:{PORT + 2}/some/page?x=1")
        assert (waiting.status_code, waiting.headers["retry-after"]) == (503, "5")
        assert "certificate is being issued" in waiting.text
        assert httpx.get(f"http://{APP}:{PORT + 2}/").status_code == 301  # it has one
        unknown = httpx.get(f"http://127.0.0.1:{PORT + 2}/", headers={"Host": "x.apps.sp.test"})
        assert unknown.status_code == 301  # no Space there: nothing is being issued
        with sync_playwright() as pw:
            browser = chromium_trusting_pebble(pw, site.api_ca, PORT + 4)
            try:
                page = browser.new_page()
                page.goto(f"http://{NEW}:{PORT + 2}/")
                heading = page.get_by_role("heading").inner_text()
                assert heading == "This address's HTTPS certificate is being issued"
                with ThreadPoolExecutor(1) as pool:  # Playwright holds this thread's loop
                    assert pool.submit(keep_certificates, site.settings).result() == [NEW]
                page.wait_for_url(f"https://{NEW}:{PORT}/", timeout=15_000)  # its retry
                page.get_by_text("app").wait_for()
            finally:
                browser.close()
        assert app_host_view(site.settings, NEW) == {
            "domain": NEW,
            "stage": "READY",
            "certificate": "ISSUED",
        }
        assert httpx.get(f"http://{NEW}:{PORT + 2}/").status_code == 301
    finally:
        asyncio.run(site.proxy.set_routes(list(routes.values())))


def test_an_operators_own_wildcard_wins_for_the_names_it_covers(site: Site) -> None:
    cert, key = self_signed(["*.apps.sp.test"], "operator wildcard")
    (site.tmp / "own.pem").write_bytes(cert)
    (site.tmp / "own.key").write_bytes(key)
    own = site.settings.model_copy(
        update={"tls_cert_file": site.tmp / "own.pem", "tls_key_file": site.tmp / "own.key"}
    )
    try:
        assert push_certificates(own)
        issuer = _served(APP, None).issuer.rfc4514_string()
        assert issuer == "CN=operator wildcard"
        assert _served(CONSOLE, site.pebble_root).issuer.rfc4514_string() != issuer
        assert keep_certificates(own) == []  # the wildcard covers the app: nothing ordered
    finally:
        push_certificates(site.settings)
    assert _served(APP, site.pebble_root).issuer.rfc4514_string() != "CN=operator wildcard"


def test_orders_are_rate_limited_and_a_failed_host_waits(site: Site) -> None:
    stored = load_all(site.settings)
    due = max(b.renew_at() for b in stored.values()) + dt.timedelta(minutes=1)
    one = site.settings.model_copy(update={"acme_orders_per_pass": 1})
    assert keep_certificates(one, now=due) == [CONSOLE]  # the console first, the app queues
    assert load_all(site.settings)[APP].serial == stored[APP].serial
    assert _served(APP, site.pebble_root).serial_number == stored[APP].serial
    # a host the CA cannot reach (no DNS name): the order fails, and is not tried next pass
    lost = Route(space_id="lost/one", hosts=("lost-one.apps.sp.test",), upstream="127.0.0.1:9")
    routes = asyncio.run(site.proxy.get_all_routes())
    asyncio.run(site.proxy.set_routes([*routes.values(), lost]))
    try:
        assert keep_certificates(site.settings) == []
        assert "lost-one.apps.sp.test" not in load_all(site.settings)
        served = _served(CONSOLE, site.pebble_root)  # the others are still served
        assert served.serial_number == load_all(site.settings)[CONSOLE].serial
    finally:
        asyncio.run(site.proxy.set_routes(list(routes.values())))


def test_chromium_loads_the_app_over_http2(site: Site) -> None:
    """A real browser: Debian's Chromium trusting pebble's chains (tests/tls/pebble.py)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = chromium_trusting_pebble(pw, site.api_ca, PORT + 4)
        try:
            page = browser.new_page()
            resp = page.goto(f"https://{APP}:{PORT}/")
            assert resp is not None and resp.status == 200
            assert page.inner_text("body") == "app"
            protocol = page.evaluate(
                "performance.getEntriesByType('navigation')[0].nextHopProtocol"
            )
            assert protocol == "h2"
        finally:
            browser.close()


@pytest.mark.slow  # two browsers, and the HTTP/1.1 page waits its 5 s out
def test_six_held_streams_leave_room_for_more_requests_over_http2(site: Site) -> None:
    """Browsers open at most 6 HTTP/1.1 connections per host: a page holding six streams of
    one app (six embeds) has none left for its next request. Over HTTP/2 they share one
    connection. The same page in the same browser, HTTP/2 and HTTP/1.1 (`--disable-http2`)."""
    from playwright.sync_api import sync_playwright

    seen = {}
    with sync_playwright() as pw:
        for label, extra in (("HTTP/2", []), ("HTTP/1.1", ["--disable-http2"])):
            browser = chromium_trusting_pebble(pw, site.api_ca, PORT + 4, *extra)
            try:
                page = browser.new_page()
                page.goto(f"https://{APP}:{PORT}/streams")
                seen[label] = page.evaluate("window.result")
            finally:
                browser.close()
    print(f"the 7th request beside six held streams: {seen}")
    assert seen["HTTP/2"]["protocol"] == "h2" and seen["HTTP/2"]["answer"] == "app"
    assert seen["HTTP/1.1"]["protocol"] == "http/1.1"
    # queued behind the streams (20 s each): still waiting at 5 s, or given up by Chromium
    assert seen["HTTP/1.1"]["answer"] != "app"
