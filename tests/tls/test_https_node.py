"""A whole node with an https SPACEPORT_URL (`spaceport up`: nginx, API and its reconciler,
worker), its certificates ordered from pebble, driven like a visitor and an owner would:
httpx and Chromium over HTTPS, git and the API for the owner's steps.

Names under `.test` reach this machine through /etc/hosts (pebble's validations, httpx) and
Chromium's host-resolver rules.
"""

from __future__ import annotations

import os
import shutil
import ssl
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import redis

from spaceport.settings import Settings
from tests.conftest import ARTIFACTS, EXAMPLES, PUBLIC_PORT, REDIS_DB, hosts_entries, need, unique
from tests.runtime.helpers import wait_for
from tests.tls.pebble import chromium_trusting_pebble, pebble, pebble_root

T = TypeVar("T")
PORT = PUBLIC_PORT + 50  # HTTPS; +1 the API, +2 plain HTTP, +4..+6 pebble
# Its own Redis database (Celery's queue in it): never the shared node's, nor another run's
REDIS_DB_HTTPS = int(os.environ.get("SPACEPORT_TEST_REDIS_DB_HTTPS", (REDIS_DB + 1) % 16))
CONSOLE = "spaces.sp.test"
APPS = "apps.sp.test"
GRADIO = unique("gr")  # a public Gradio Space
PRIVATE = unique("pv")  # a private Space (no app pushed: its status page is enough)
SITE = unique("site")
DOMAIN = f"{SITE}.customer.test"  # a custom domain of the Space `SITE`
PRIVATE_DOMAIN = f"{PRIVATE}.customer.test"
TXT_DOMAIN = f"{unique('txt')}.elsewhere.test"  # proven by DNS TXT: its name points nowhere here
DNS_PORT = PORT + 8  # dnsmasq (UDP), the nameserver the node asks for TXT records


@dataclass
class HttpsNode:
    url: str
    token: str
    settings: Settings
    root: Path  # pebble's root: what visitors verify the node's certificates with
    api_ca: Path  # pebble's own API certificate (its management port)
    env: dict[str, str]

    def api(self) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.token}"}
        return httpx.Client(base_url=self.url, headers=headers, verify=self.verify(), timeout=30)

    def verify(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.root)

    def app_url(self, name: str) -> str:
        return f"https://admin-{name}.{APPS}:{PORT}/"

    def get(self, url: str, **kw: Any) -> httpx.Response | None:
        """A visitor's GET; None while the host has no trusted certificate (or no route)."""
        try:
            with httpx.Client(http2=True, verify=self.verify(), timeout=30) as client:
                return client.get(url, **kw)
        except (httpx.ConnectError, httpx.RemoteProtocolError):
            return None

    def create_space(self, name: str, sdk: str, **extra: Any) -> None:
        with self.api() as client:
            made = client.post(
                "/api/repos/create", json={"type": "space", "name": name, "sdk": sdk, **extra}
            )
        assert made.status_code == 200, made.text

    def push(self, src: Path, name: str, work: Path) -> None:
        """`git push` for real, to the API port (git over pebble's TLS is not what is tested)."""
        shutil.copytree(src, work)
        git = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid"}
        git |= {"GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid"}
        remote = f"http://x:{self.token}@127.0.0.1:{PORT + 1}/spaces/admin/{name}"
        for argv in (
            ["git", "init", "-q", "-b", "main"],
            ["git", "add", "-A"],
            ["git", "commit", "-q", "-m", "app"],
            ["git", "push", "-q", remote, "main:main"],
        ):
            done = subprocess.run(argv, cwd=work, env={**os.environ, **git}, capture_output=True)
            assert done.returncode == 0, done.stderr

    def stage(self, name: str) -> str:
        with self.api() as client:
            return str(client.get(f"/api/spaces/admin/{name}/runtime").json()["stage"])


def again_if_the_network_changed(step: Callable[[], T]) -> T:
    """Run a browser step again (up to 3 times) when Chromium aborted it because this host's
    interfaces changed: other tests' containers come and go on this machine (a veth appears,
    net::ERR_NETWORK_CHANGED), which a visitor's browser elsewhere never sees."""
    for attempt in range(3):
        try:
            return step()
        except Exception as exc:
            if "ERR_NETWORK_CHANGED" not in str(exc) or attempt == 2:
                raise
    raise AssertionError("unreachable")


@contextmanager
def dnsmasq(*txt: tuple[str, str]) -> Iterator[None]:
    """Debian's dnsmasq answering the TXT records `txt` ((name, value) pairs) on DNS_PORT, and
    NXDOMAIN for any other name under .test."""
    need(shutil.which("dnsmasq") is not None, "dnsmasq (apt-get install dnsmasq-base)")
    argv = ["dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv"]
    argv += ["--no-hosts", f"--port={DNS_PORT}", "--listen-address=127.0.0.1"]
    argv += ["--bind-interfaces", "--local=/test/", "--pid-file=", "--log-facility=-"]
    argv += [f"--txt-record={name},{value}" for name, value in txt]
    server = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: b"started" in (server.stderr.readline() if server.stderr else b""), 10)
        yield
    finally:
        server.terminate()
        server.wait(10)


@pytest.fixture(scope="module")
def https_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpsNode]:
    need(shutil.which("pebble") is not None, "pebble (apt-get install pebble)")
    tmp = tmp_path_factory.mktemp("https-node")
    token = "sp_test_" + uuid.uuid4().hex
    env = {
        **os.environ,
        "SPACEPORT_DATA": str(tmp / "data"),
        "SPACEPORT_URL": f"https://{CONSOLE}:{PORT}",
        "SPACEPORT_APPS_DOMAIN": APPS,
        "SPACEPORT_LISTEN": f"127.0.0.1:{PORT}",
        "SPACEPORT_HTTP_LISTEN": f"127.0.0.1:{PORT + 2}",
        "SPACEPORT_API_PORT": str(PORT + 1),
        "SPACEPORT_REDIS_URL": f"redis://127.0.0.1:6379/{REDIS_DB_HTTPS}",
        "SPACEPORT_ADMIN_TOKEN": token,
        "SPACEPORT_SECRET_KEY": "https-node-test",
        "SPACEPORT_RECONCILE_INTERVAL_S": "1",
        "SPACEPORT_STANDBY_TTL_S": "0",
        "SPACEPORT_ACME_DIRECTORY": f"https://localhost:{PORT + 4}/dir",
        "SPACEPORT_ACME_CA_BUNDLE": str(tmp / "pebble-api.pem"),
        "SPACEPORT_DOMAIN_DNS_SERVERS": f'["127.0.0.1:{DNS_PORT}"]',
    }
    settings = Settings(
        data=tmp / "data", url=env["SPACEPORT_URL"], secret_key=env["SPACEPORT_SECRET_KEY"]
    )
    names = [CONSOLE, DOMAIN, PRIVATE_DOMAIN]
    names += [f"admin-{n}.{APPS}" for n in (GRADIO, PRIVATE, SITE)]
    cli = [sys.executable, "-m", "spaceport.cli.main"]
    redis.Redis.from_url(env["SPACEPORT_REDIS_URL"]).flushdb()  # no task of an earlier run
    with hosts_entries(*names), pebble(tmp, PORT + 4, PORT + 2) as api_ca:
        log = (tmp / "up.log").open("wb")
        try:
            up = subprocess.run([*cli, "up", "--no-examples"], env=env, stdout=log, stderr=log)
            assert up.returncode == 0, (tmp / "up.log").read_text()[-3000:]
            node = HttpsNode(
                f"https://{CONSOLE}:{PORT}", token, settings, pebble_root(api_ca, PORT + 4, tmp),
                api_ca, env,
            )  # fmt: skip
            wait_for(lambda: node.get(f"{node.url}/api/v1/health"), 90, every=0.3)
            yield node
        finally:
            subprocess.run([*cli, "down"], env=env, stdout=log, stderr=log)
            log.close()
            subprocess.run(
                "docker ps -aq --filter label=org.spaceport.instance="
                f"{settings.instance} | xargs -r docker rm -f",
                shell=True,
                capture_output=True,
            )
            print((tmp / "up.log").read_text()[-2000:])
            for name in ("api", "worker"):
                path = settings.logs_dir / f"{name}.log"
                if path.is_file():
                    print(f"--- {name}.log", path.read_text()[-3000:])


def test_console_answers_over_http2_and_plain_http_redirects(https_node: HttpsNode) -> None:
    health = https_node.get(f"{https_node.url}/api/v1/health")
    assert health is not None and (health.status_code, health.http_version) == (200, "HTTP/2")
    page = https_node.get(f"{https_node.url}/")
    assert page is not None and page.status_code == 200 and "Spaceport" in page.text
    plain = httpx.get(f"http://{CONSOLE}:{PORT + 2}/spaces")
    assert plain.status_code == 301
    assert plain.headers["location"] == f"https://{CONSOLE}:{PORT}/spaces"


def test_a_custom_domain_is_verified_routed_and_given_its_certificate(
    https_node: HttpsNode,
) -> None:
    https_node.create_space(SITE, "static")
    with https_node.api() as client:
        added = client.post(f"/api/v1/spaces/admin/{SITE}/domains", json={"domain": DOMAIN})
        assert added.status_code == 200, added.text
        page = wait_for(lambda: https_node.get(f"https://{DOMAIN}:{PORT}/"), 60, every=0.5)
        domains = client.get(f"/api/v1/spaces/admin/{SITE}/domains").json()
    assert domains == [
        {"domain": DOMAIN, "stage": "READY", "verified": True, "certificate": "ISSUED"}
    ]
    assert page.http_version == "HTTP/2"
    assert f"admin/{SITE}" in page.text  # the Space's status page (no app yet), on its domain


def test_chromium_answers_a_gradio_call_over_https_and_http2(
    https_node: HttpsNode, tmp_path: Path
) -> None:
    """A visitor's browser on a Gradio Space's https URL: the page loads over HTTP/2, the
    front end's calls (Gradio's queue: a POST, then its event stream) go through nginx's TLS,
    and the answer shows in the page."""
    from playwright.sync_api import expect, sync_playwright

    https_node.create_space(GRADIO, "gradio")
    https_node.push(EXAMPLES / "gradio-hello", GRADIO, tmp_path / "app")
    url = https_node.app_url(GRADIO)
    wait_for(lambda: https_node.stage(GRADIO) == "RUNNING", 400, every=1)
    wait_for(lambda: (r := https_node.get(url)) is not None and r.status_code == 200, 60)
    calls: list[str] = []

    def asks(browser: Any) -> str:
        page = browser.new_page()
        page.on("requestfinished", lambda r: calls.append(r.url))
        try:
            resp = page.goto(url)
            assert resp is not None and resp.status == 200
            page.get_by_label("Name").fill("TLS", timeout=120_000)
            page.get_by_role("button", name="Submit").click()
            expect(page.get_by_label("Greeting")).to_have_value("Hello, TLS!", timeout=30_000)
            navigation = "performance.getEntriesByType('navigation')[0].nextHopProtocol"
            return str(page.evaluate(navigation))
        except Exception:
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "https-gradio.png"))
            raise
        finally:
            page.close()

    with sync_playwright() as pw:
        browser = chromium_trusting_pebble(pw, https_node.api_ca, PORT + 4)
        try:
            protocol = again_if_the_network_changed(lambda: asks(browser))
        finally:
            browser.close()
    assert protocol == "h2"
    queue = [c for c in calls if "/queue/" in c or "/call/" in c]
    assert queue and all(c.startswith(url) for c in queue), calls  # https, on the app's host

    # Embedding keeps working over HTTPS: the Space's own snippets carry its https URL, and a
    # page of another origin that pastes the iframe snippet shows the working app.
    with https_node.api() as client:
        embed = client.get(f"/api/v1/spaces/admin/{GRADIO}/embed").json()
    assert embed["app_url"].startswith("https://") and url in embed["iframe"]
    assert embed["script_url"].startswith("https://"), embed

    def embedded(browser: Any) -> str:
        page = browser.new_page()
        try:
            page.set_content(f"<h1>A course page</h1>{embed['iframe']}")
            frame = page.frame_locator("iframe")
            frame.get_by_label("Name").fill("embed", timeout=120_000)
            frame.get_by_role("button", name="Submit").click()
            expect(frame.get_by_label("Greeting")).to_have_value("Hello, embed!", timeout=30_000)
            return "ok"
        finally:
            page.close()

    with sync_playwright() as pw:
        browser = chromium_trusting_pebble(pw, https_node.api_ca, PORT + 4)
        try:
            assert again_if_the_network_changed(lambda: embedded(browser)) == "ok"
        finally:
            browser.close()


def _signs_in(node: HttpsNode, browser: Any, url: str) -> dict[str, Any]:
    """A private Space's owner, as a stranger to its app first: the 404 page's sign-in link,
    the console's login page, and back into the app. Returns the browser's cookies by name."""
    return again_if_the_network_changed(lambda: _sign_in_once(node, browser, url))


def _sign_in_once(node: HttpsNode, browser: Any, url: str) -> dict[str, Any]:
    context = browser.new_context()
    page = context.new_page()
    try:
        resp = page.goto(url)
        assert resp is not None and resp.status == 404
        page.locator("#sign-in").click()
        page.wait_for_url("**/login?**")
        page.locator("#token").fill(node.token)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(url, timeout=30_000)
        assert f"admin/{PRIVATE}" in page.inner_text("body")  # its status page: no app yet
        return {c["name"]: c for c in context.cookies()}
    except Exception:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "https-private-sign-in.png"))
        raise
    finally:
        context.close()


def _stranger_status(browser: Any, url: str, cookie: dict[str, Any] | None = None) -> int:
    return again_if_the_network_changed(lambda: _status_once(browser, url, cookie))


def _status_once(browser: Any, url: str, cookie: dict[str, Any] | None) -> int:
    context = browser.new_context()
    if cookie is not None:
        context.add_cookies([cookie])
    try:
        resp = context.new_page().goto(url)
        assert resp is not None
        return int(resp.status)
    finally:
        context.close()


def test_cookies_are_secure_over_https(https_node: HttpsNode) -> None:
    """The console's session cookie and a private app's cookie carry `Secure` when the node's
    URL is https: a browser never sends them over plain HTTP."""
    from playwright.sync_api import sync_playwright

    https_node.create_space(PRIVATE, "static", private=True)
    url = https_node.app_url(PRIVATE)
    wait_for(lambda: https_node.get(url), 60, every=0.5)  # its certificate, its route
    with sync_playwright() as pw:
        browser = chromium_trusting_pebble(pw, https_node.api_ca, PORT + 4)
        try:
            cookies = _signs_in(https_node, browser, url)
        finally:
            browser.close()
    console, app = cookies["spaceport_session"], cookies["spaceport_app_session"]
    assert (console["domain"], console["secure"], console["httpOnly"]) == (CONSOLE, True, True)
    assert (app["domain"], app["secure"], app["httpOnly"]) == (
        f"admin-{PRIVATE}.{APPS}",
        True,
        True,
    )


def test_a_private_space_signs_its_owner_in_on_its_custom_domain(https_node: HttpsNode) -> None:
    """The sign-in handshake lands on the custom domain: the ticket and the cookie belong to
    that host, and the app host's cookie is worth nothing there."""
    from playwright.sync_api import sync_playwright

    with https_node.api() as client:
        if client.get(f"/api/spaces/admin/{PRIVATE}").status_code == 404:
            https_node.create_space(PRIVATE, "static", private=True)
        added = client.post(
            f"/api/v1/spaces/admin/{PRIVATE}/domains", json={"domain": PRIVATE_DOMAIN}
        )
        assert added.status_code == 200, added.text
    url = f"https://{PRIVATE_DOMAIN}:{PORT}/"
    wait_for(lambda: https_node.get(url), 60, every=0.5)  # verified, routed, its certificate
    with sync_playwright() as pw:
        browser = chromium_trusting_pebble(pw, https_node.api_ca, PORT + 4)
        try:
            assert _stranger_status(browser, url) == 404
            cookie = _signs_in(https_node, browser, url)["spaceport_app_session"]
            assert (cookie["domain"], cookie["secure"]) == (PRIVATE_DOMAIN, True)
            assert _stranger_status(browser, url, cookie) != 404  # the owner's cookie opens it
            elsewhere = {**cookie, "domain": f"admin-{PRIVATE}.{APPS}"}
            assert _stranger_status(browser, https_node.app_url(PRIVATE), elsewhere) == 404
        finally:
            browser.close()
    # API clients send the owner's token instead, over HTTP/2 and HTTP/1.1 alike
    owner = {"Authorization": f"Bearer {https_node.token}", "Accept": "application/json"}
    for http2 in (True, False):
        with httpx.Client(http2=http2, verify=https_node.verify()) as client:
            answers = (
                client.get(url, headers=owner),
                client.get(url, headers=owner | {"Authorization": ""}),
            )
        assert [r.http_version for r in answers] == ["HTTP/2" if http2 else "HTTP/1.1"] * 2
        assert answers[0].json().get("space") == f"admin/{PRIVATE}", (http2, answers[0].text)
        assert answers[1].status_code == 404


def test_a_custom_domain_is_proven_by_a_dns_txt_record(https_node: HttpsNode) -> None:
    """A domain whose name does not reach this node (the HTTP check fails) is verified by the
    TXT record `_spaceport-challenge.<domain>` holding its token, asked of a real nameserver
    (SPACEPORT_DOMAIN_DNS_SERVERS). Its certificate still needs HTTP-01, so it waits."""
    from spaceport.services.dns_txt import txt_values

    name = unique("txt")
    https_node.create_space(name, "static")
    with https_node.api() as client:
        base = f"/api/v1/spaces/admin/{name}/domains"
        added = client.post(base, json={"domain": TXT_DOMAIN})
        assert added.status_code == 200, added.text
        record = added.json()[0]["txt_record"]
        assert record["name"] == f"_spaceport-challenge.{TXT_DOMAIN}"
        assert record["value"] in added.json()[0]["verification"]
        settings = https_node.settings.model_copy(
            update={"domain_dns_servers": [f"127.0.0.1:{DNS_PORT}"]}
        )
        with dnsmasq((record["name"], record["value"]), ("_spaceport-challenge.x.test", "no")):
            assert txt_values(settings, TXT_DOMAIN).values == (record["value"],)
            wrong = txt_values(settings, "x.test")
            assert wrong.values == ("no",) and wrong.problem is None
            assert (
                txt_values(settings, "y.test").problem == "no DNS name _spaceport-challenge.y.test"
            )

            def verified() -> dict[str, Any] | None:
                views = {d["domain"]: d for d in client.get(base).json()}
                return views[TXT_DOMAIN] if views[TXT_DOMAIN]["verified"] else None

            view = wait_for(verified, 60, every=0.5)  # checked each 30 s at most: one more try
    assert view == {
        "domain": TXT_DOMAIN,
        "stage": "READY",
        "verified": True,
        "certificate": "PENDING",
    }
    # Its own app host cannot be validated either (no name for it here): the runtime and the
    # Space's page in the console say its certificate is being issued
    with https_node.api() as client:
        runtime = client.get(f"/api/spaces/admin/{name}/runtime").json()
        page = client.get(f"/spaces/admin/{name}").text
    assert runtime["domains"][0] == {
        "domain": f"admin-{name}.{APPS}",
        "stage": "PENDING",
        "certificate": "PENDING",
        "message": "its HTTPS certificate is being issued (usually under a minute)",
    }
    assert 'id="cert-chip"' in page and "HTTPS certificate being issued" in page
