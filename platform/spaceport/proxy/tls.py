"""Keep nginx's certificates current: order what is missing, renew what is due, push the table.

With an https SPACEPORT_URL the reconciler calls `keep_certificates` each pass. The hosts that
need a certificate are the console's and every host in nginx's route table (a Space's host
gets one once it is routed, i.e. on first use), less those the operator's own certificate
covers (a wildcard for the apps domain). A certificate is renewed two thirds into its lifetime.
Orders are rate-limited (`acme_orders_per_pass`; the console first) and a host whose order
failed waits `acme_retry_s`, so a misconfigured DNS name cannot spend the CA's rate limits.

Whatever changed, the whole table is pushed to nginx's shared memory over its admin socket
(`push_certificates`): the next handshake uses it, without a reload.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import threading
import time
from collections.abc import Iterable
from urllib.parse import urlparse

import structlog

from spaceport.proxy.acme_orders import AcmeError, order_certificate
from spaceport.proxy.nginx import NginxProxy
from spaceport.proxy.tls_store import (
    cert_table,
    covers,
    load_all,
    own_certificate,
    save,
    table_digest,
)
from spaceport.settings import Settings

__all__ = [
    "NginxChallenges",
    "console_host",
    "keep_certificates",
    "keep_certificates_in_background",
    "push_certificates",
]

log = structlog.get_logger(__name__)

_retry_after: dict[str, float] = {}
"""host -> monotonic time before which its failed order is not tried again."""
_orders: threading.Thread | None = None


class NginxChallenges:
    """HTTP-01 answers in nginx's shared memory (acme_orders.Challenges)."""

    def __init__(self, proxy: NginxProxy) -> None:
        self.proxy = proxy

    def put(self, token: str, key_authorization: str) -> None:
        asyncio.run(self.proxy.put_challenge(token, key_authorization))

    def delete(self, token: str) -> None:
        asyncio.run(self.proxy.delete_challenge(token))


def console_host(settings: Settings) -> str:
    return (urlparse(settings.url).hostname or "").lower()


def _orderable(host: str) -> bool:
    """A DNS name a public CA can validate: not an IP address, not a bare label."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return "." in host and not host.endswith(".localhost")
    return False


def wanted_hosts(settings: Settings, routed: Iterable[str]) -> list[str]:
    """The console first, then each routed host once, in order."""
    out: list[str] = []
    for host in (console_host(settings), *routed):
        host = host.lower()
        if host and host not in out and _orderable(host):
            out.append(host)
    return out


def push_certificates(settings: Settings, proxy: NginxProxy | None = None) -> bool:
    """Give nginx the stored table when it serves another; True when it was pushed."""
    proxy = proxy or NginxProxy(settings, manage_process=False)
    table = cert_table(settings, console_host(settings))
    digest = table_digest(table)

    async def push() -> bool:
        if await proxy.served_certs_digest() == digest:
            return False
        await proxy.set_certs(table, digest)
        return True

    return asyncio.run(push())


def keep_certificates(settings: Settings, now: dt.datetime | None = None) -> list[str]:
    """One pass (see the module's docstring); returns the hosts ordered a certificate."""
    if not settings.https:
        return []
    proxy = NginxProxy(settings, manage_process=False)
    now = now or dt.datetime.now(dt.UTC)
    push_certificates(settings, proxy)  # a restarted nginx serves what is stored at once
    routes = asyncio.run(proxy.get_all_routes())
    hosts = wanted_hosts(settings, (h for r in routes.values() for h in r.hosts))
    own = own_certificate(settings)
    have = load_all(settings)
    ordered: list[str] = []
    budget = settings.acme_orders_per_pass
    for host in hosts:
        if own is not None and covers(own, host):
            continue
        bundle = have.get(host)
        if bundle is not None and covers(bundle, host) and now < bundle.renew_at():
            continue
        waiting = time.monotonic() < _retry_after.get(host, 0.0)
        if not settings.acme_directory or budget <= 0 or waiting:
            continue
        budget -= 1
        try:
            save(settings, order_certificate(settings, host, [host], NginxChallenges(proxy)))
        except AcmeError as exc:
            log.warning("tls.order_failed", host=host, error=str(exc))
            _retry_after[host] = time.monotonic() + settings.acme_retry_s
            continue
        log.info("tls.certificate", host=host, renewed=bundle is not None)
        ordered.append(host)
        push_certificates(settings, proxy)  # served now, before the next order
    return ordered


def keep_certificates_in_background(settings: Settings) -> bool:
    """Run one `keep_certificates` pass in a thread unless the last one is still ordering;
    True when a pass was started. Failures are logged, never raised: the next call tries."""
    global _orders
    if _orders is not None and _orders.is_alive():
        return False

    def run() -> None:
        try:
            keep_certificates(settings)
        except Exception as exc:  # nginx down, the data dir unreadable: the next pass tries
            log.warning("tls.pass_failed", error=repr(exc))

    _orders = threading.Thread(target=run, name="acme-orders", daemon=True)
    _orders.start()
    return True
