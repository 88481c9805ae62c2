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
import json
import os
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from spaceport.proxy.base import Route
from spaceport.proxy.nginx import NginxProxy
from spaceport.proxy.tls import keep_certificates, push_certificates
from spaceport.proxy.tls_store import load_all
from spaceport.settings import Settings
from tests.conftest import PUBLIC_PORT, hosts_entries, need

PORT = PUBLIC_PORT + 40  # HTTPS; +1 the "API", +2 plain HTTP, +3 the app, +4..+6 pebble
CONSOLE = "console.sp.test"
APP = "demo-one.apps.sp.test"


@dataclass
class Site:
    settings: Settings
    proxy: NginxProxy
    pebble_root: Path
    tmp: Path


class _Says(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = self.server.says.encode()  # type: ignore[attr-defined]
        self.send_response(200)
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


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    need(shutil.which("pebble") is not None, "pebble (apt-get install pebble)")
    need(shutil.which("nginx", path="/usr/sbin:/usr/bin") is not None, "nginx")
    tmp = tmp_path_factory.mktemp("https")
    # pebble's own HTTPS (its API and management port) under a throwaway self-signed cert
    cert, key = _self_signed(["localhost"], "pebble api")
    (tmp / "pebble-api.pem").write_bytes(cert)
    (tmp / "pebble-api.key").write_bytes(key)
    (tmp / "pebble.json").write_text(
        json.dumps(
            {
                "pebble": {
                    "listenAddress": f"127.0.0.1:{PORT + 4}",
                    "managementListenAddress": f"127.0.0.1:{PORT + 5}",
                    "certificate": str(tmp / "pebble-api.pem"),
                    "privateKey": str(tmp / "pebble-api.key"),
                    "httpPort": PORT + 2,  # validations dial our plain HTTP port
                    "tlsPort": PORT + 6,
                    "ocspResponderURL": "",
                    "externalAccountBindingRequired": False,
                }
            }
        )
    )
    env = {**os.environ, "PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0"}
    log = (tmp / "pebble.log").open("w")
    pebble = subprocess.Popen(
        ["pebble", "-config", str(tmp / "pebble.json")], env=env, stdout=log, stderr=log
    )
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
    with hosts_entries(CONSOLE, APP):
        try:
            _wait_port(PORT + 4)
            asyncio.run(proxy.start())
            route = Route(space_id="demo/one", hosts=(APP,), upstream=f"127.0.0.1:{PORT + 3}")
            asyncio.run(proxy.set_routes([route]))
            assert keep_certificates(settings) == [CONSOLE, APP]
            api_ca = ssl.create_default_context(cafile=tmp / "pebble-api.pem")
            root = httpx.get(f"https://localhost:{PORT + 5}/roots/0", verify=api_ca)
            (tmp / "pebble-root.pem").write_text(root.text)
            yield Site(settings, proxy, tmp / "pebble-root.pem", tmp)
        finally:
            asyncio.run(proxy.stop())
            for server in servers:
                server.shutdown()
            pebble.terminate()
            pebble.wait(10)


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
    due = max(b.renew_at() for b in stored.values()) + dt.timedelta(minutes=1)
    assert keep_certificates(site.settings, now=due) == [CONSOLE, APP]
    after = {host: _served(host, site.pebble_root).serial_number for host in (CONSOLE, APP)}
    assert all(after[h] != before[h] for h in before)
    assert after[CONSOLE] == load_all(site.settings)[CONSOLE].serial
    assert _nginx_processes(site) == processes  # no restart, no reload
    with _client(site) as client:
        assert client.get(f"https://{APP}:{PORT}/").text == "app"


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
