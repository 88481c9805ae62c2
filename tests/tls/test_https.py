"""HTTPS through nginx with certificates from a real ACME CA: Debian's pebble.

Its own nginx (an https SPACEPORT_URL; not the shared node, which stays HTTP), two small web
servers standing for the console (the API port) and one Space's app, and pebble, whose HTTP-01
validations dial our plain HTTP port (its `httpPort`) at names that /etc/hosts maps to
loopback. Certificates are verified against pebble's root, fetched from its management port.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import http.server
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from spaceport.proxy.base import Route
from spaceport.proxy.nginx import NginxProcess, NginxProxy
from spaceport.proxy.tls import keep_certificates, push_certificates
from spaceport.proxy.tls_store import load_all
from spaceport.settings import Settings
from tests.conftest import CHROMIUM_ARGS, PUBLIC_PORT, REDIS_DB, hosts_entries, need
from tests.runtime.helpers import wait_for

PORT = PUBLIC_PORT + 40  # HTTPS; +1 the "API", +2 plain HTTP, +3 the app, +4..+6 pebble
NODE_PORT = PUBLIC_PORT + 50  # the same for the node test (its own pebble: one HTTP port each)
NODE_HOST = "spaces.sp.test"
DOMAIN = "demo.customer.test"  # a custom domain of a Space on that node
CONSOLE = "console.sp.test"
APP = "demo-one.apps.sp.test"


@dataclass
class Site:
    settings: Settings
    proxy: NginxProxy
    pebble_root: Path
    tmp: Path


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


def _serve(port: int, says: str) -> http.server.ThreadingHTTPServer:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), _Says)
    server.says = says  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _self_signed(names: list[str], cn: str) -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = dt.datetime.now(dt.UTC)
    alt: list[x509.GeneralName] = [x509.DNSName(n) for n in names]
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=7))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def _wait_port(port: int, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError(f"nothing listens on {port}")


@contextmanager
def _pebble(tmp: Path, port: int, http_port: int) -> Iterator[Path]:
    """pebble with its API on `port` and management on `port + 1`, validating HTTP-01 on
    `http_port`; yields the CA file its own HTTPS is verified against."""
    cert, key = _self_signed(["localhost"], "pebble api")
    (tmp / "pebble-api.pem").write_bytes(cert)
    (tmp / "pebble-api.key").write_bytes(key)
    config = {
        "listenAddress": f"127.0.0.1:{port}",
        "managementListenAddress": f"127.0.0.1:{port + 1}",
        "certificate": str(tmp / "pebble-api.pem"),
        "privateKey": str(tmp / "pebble-api.key"),
        "httpPort": http_port,  # validations dial our plain HTTP port
        "tlsPort": port + 2,
        "ocspResponderURL": "",
        "externalAccountBindingRequired": False,
    }
    (tmp / "pebble.json").write_text(json.dumps({"pebble": config}))
    env = {**os.environ, "PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0"}
    with (tmp / "pebble.log").open("w") as log:
        pebble = subprocess.Popen(
            ["pebble", "-config", str(tmp / "pebble.json")], env=env, stdout=log, stderr=log
        )
    try:
        _wait_port(port)
        yield tmp / "pebble-api.pem"
    finally:
        pebble.terminate()
        pebble.wait(10)


def _pebble_root(api_ca: Path, port: int, tmp: Path) -> Path:
    """pebble's root (made anew at each start), from its management port."""
    root = httpx.get(
        f"https://localhost:{port + 1}/roots/0", verify=ssl.create_default_context(cafile=api_ca)
    )
    (tmp / "pebble-root.pem").write_text(root.text)
    return tmp / "pebble-root.pem"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    need(shutil.which("pebble") is not None, "pebble (apt-get install pebble)")
    tmp = tmp_path_factory.mktemp("https")
    servers = [_serve(PORT + 1, "console"), _serve(PORT + 3, "app")]
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
    with hosts_entries(CONSOLE, APP), _pebble(tmp, PORT + 4, PORT + 2) as api_ca:
        try:
            asyncio.run(proxy.start())
            route = Route(space_id="demo/one", hosts=(APP,), upstream=f"127.0.0.1:{PORT + 3}")
            asyncio.run(proxy.set_routes([route]))
            assert keep_certificates(settings) == [CONSOLE, APP]
            yield Site(settings, proxy, _pebble_root(api_ca, PORT + 4, tmp), tmp)
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
    processes = _nginx_processes(site)
    before = {host: _served(host, site.pebble_root).serial_number for host in (CONSOLE, APP)}
    stored = load_all(site.settings)
    early = min(b.renew_at() for b in stored.values()) - dt.timedelta(minutes=1)
    assert keep_certificates(site.settings, now=early) == []  # nothing due yet
    # Visitors meanwhile: one keep-alive client, and a new handshake after another.
    done, failures = threading.Event(), []
    seen: list[int] = []
    requests = [0]

    def keep_alive() -> None:
        with _client(site) as client:
            while not done.is_set():
                try:
                    ok = client.get(f"https://{APP}:{PORT}/").text == "app"
                except httpx.HTTPError as exc:
                    ok = False
                    failures.append(repr(exc))
                requests[0] += 1
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

    visitors = [threading.Thread(target=keep_alive), threading.Thread(target=handshakes)]
    for visitor in visitors:
        visitor.start()
    try:
        due = max(b.renew_at() for b in stored.values()) + dt.timedelta(minutes=1)
        assert keep_certificates(site.settings, now=due) == [CONSOLE, APP]
        time.sleep(0.3)
    finally:
        done.set()
        for visitor in visitors:
            visitor.join(10)
    after = {host: _served(host, site.pebble_root).serial_number for host in (CONSOLE, APP)}
    assert all(after[h] != before[h] for h in before)
    assert after[CONSOLE] == load_all(site.settings)[CONSOLE].serial
    assert _nginx_processes(site) == processes  # no restart, no reload
    assert failures == []  # nothing dropped across the swap
    assert seen[0] == before[APP] and seen[-1] == after[APP]
    print(f"during the renewal: {requests[0]} keep-alive requests, {len(seen)} handshakes")


def test_an_operators_own_wildcard_wins_for_the_names_it_covers(site: Site) -> None:
    cert, key = _self_signed(["*.apps.sp.test"], "operator wildcard")
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


def test_a_node_with_an_https_url_serves_its_console_with_a_certificate_from_acme(
    tmp_path: Path,
) -> None:
    """The real control plane (`spaceport api`, whose reconciler orders the certificate)."""
    need(shutil.which("pebble") is not None, "pebble (apt-get install pebble)")
    token = "sp_test_" + uuid.uuid4().hex
    env = {
        **os.environ,
        "SPACEPORT_DATA": str(tmp_path / "data"),
        "SPACEPORT_URL": f"https://{NODE_HOST}:{NODE_PORT}",
        "SPACEPORT_LISTEN": f"127.0.0.1:{NODE_PORT}",
        "SPACEPORT_HTTP_LISTEN": f"127.0.0.1:{NODE_PORT + 2}",
        "SPACEPORT_API_PORT": str(NODE_PORT + 1),
        "SPACEPORT_REDIS_URL": f"redis://127.0.0.1:6379/{REDIS_DB + 1}",
        "SPACEPORT_ADMIN_TOKEN": token,
        "SPACEPORT_SECRET_KEY": "https-node-test",
        "SPACEPORT_RECONCILE_INTERVAL_S": "1",
        "SPACEPORT_ACME_DIRECTORY": f"https://localhost:{NODE_PORT + 4}/dir",
        "SPACEPORT_ACME_CA_BUNDLE": str(tmp_path / "pebble-api.pem"),
    }
    settings = Settings(
        data=tmp_path / "data",
        url=env["SPACEPORT_URL"],
        listen=env["SPACEPORT_LISTEN"],
        http_listen=env["SPACEPORT_HTTP_LISTEN"],
        api_port=NODE_PORT + 1,
    )
    nginx = NginxProcess(settings)
    with (
        hosts_entries(NODE_HOST, DOMAIN),
        _pebble(tmp_path, NODE_PORT + 4, NODE_PORT + 2) as api_ca,
    ):
        asyncio.run(nginx.start())  # as `spaceport up` does; the API's reconciler keeps it
        log = (tmp_path / "api.log").open("wb")
        api = subprocess.Popen(
            [sys.executable, "-m", "spaceport.cli.main", "api"], env=env, stdout=log, stderr=log
        )
        try:
            root = _pebble_root(api_ca, NODE_PORT + 4, tmp_path)
            verify = ssl.create_default_context(cafile=root)

            def console() -> httpx.Response | None:
                try:
                    with httpx.Client(http2=True, verify=verify) as client:
                        return client.get(f"https://{NODE_HOST}:{NODE_PORT}/api/v1/health")
                except (httpx.ConnectError, httpx.RemoteProtocolError):
                    return None  # the placeholder certificate, or the API not up yet

            health = wait_for(console, 60, every=0.3)
            assert (health.status_code, health.http_version) == (200, "HTTP/2"), health.text
            with httpx.Client(http2=True, verify=verify) as client:
                page = client.get(f"https://{NODE_HOST}:{NODE_PORT}/")
            assert page.status_code == 200 and "Spaceport" in page.text
            plain = httpx.get(f"http://{NODE_HOST}:{NODE_PORT + 2}/spaces")
            assert plain.status_code == 301
            assert plain.headers["location"] == f"https://{NODE_HOST}:{NODE_PORT}/spaces"

            # A custom domain: verified through the HTTP port, routed, given its certificate.
            admin = {"Authorization": f"Bearer {token}"}
            with httpx.Client(http2=True, verify=verify, headers=admin) as client:
                base = f"https://{NODE_HOST}:{NODE_PORT}"
                made = client.post(
                    f"{base}/api/repos/create",
                    json={"type": "space", "name": "site", "sdk": "static"},
                )
                assert made.status_code == 200, made.text
                added = client.post(
                    f"{base}/api/v1/spaces/admin/site/domains", json={"domain": DOMAIN}
                )
                assert added.status_code == 200, added.text

                def served() -> httpx.Response | None:
                    try:
                        with httpx.Client(http2=True, verify=verify) as visitor:
                            return visitor.get(f"https://{DOMAIN}:{NODE_PORT}/")
                    except (httpx.ConnectError, httpx.RemoteProtocolError):
                        return None  # not verified or no certificate yet

                page = wait_for(served, 60, every=0.5)
                domains = client.get(f"{base}/api/v1/spaces/admin/site/domains").json()
            assert domains == [
                {"domain": DOMAIN, "stage": "READY", "verified": True, "certificate": "ISSUED"}
            ]
            assert page.http_version == "HTTP/2"
            assert "admin/site" in page.text  # the Space's status page (no app yet), on its domain
        finally:
            api.terminate()
            api.wait(20)
            log.close()
            asyncio.run(nginx.stop())
            print((tmp_path / "api.log").read_text()[-3000:])


def test_chromium_loads_the_app_over_http2(site: Site) -> None:
    """A real browser: Debian's Chromium trusting pebble's issuing CA (its key pinned with
    --ignore-certificate-errors-spki-list: a test profile has no trust store to add it to)."""
    chromium = shutil.which("chromium")
    need(chromium is not None, "chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    chain = x509.load_pem_x509_certificates(load_all(site.settings)[APP].chain_pem.encode())
    issuer_key = (
        chain[1]
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    spki = base64.b64encode(hashlib.sha256(issuer_key).digest()).decode()
    args = [
        *CHROMIUM_ARGS,
        "--host-resolver-rules=MAP *.sp.test 127.0.0.1",
        f"--ignore-certificate-errors-spki-list={spki}",
    ]
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=args)
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
    chromium = shutil.which("chromium")
    need(chromium is not None, "chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    chain = x509.load_pem_x509_certificates(load_all(site.settings)[APP].chain_pem.encode())
    issuer_key = (
        chain[1]
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    spki = base64.b64encode(hashlib.sha256(issuer_key).digest()).decode()
    args = [
        *CHROMIUM_ARGS,
        "--host-resolver-rules=MAP *.sp.test 127.0.0.1",
        f"--ignore-certificate-errors-spki-list={spki}",
    ]
    seen = {}
    with sync_playwright() as pw:
        for label, extra in (("HTTP/2", []), ("HTTP/1.1", ["--disable-http2"])):
            browser = pw.chromium.launch(executable_path=chromium, args=[*args, *extra])
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
