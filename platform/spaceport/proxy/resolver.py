"""Where each Space's app is right now, told to Caddy over DNS, so that moving an app never
reloads Caddy.

Caddy turns every config change into a full reload, and a reload closes the idle keep-alive
connections of every visitor of every Space: a request sent on one at that moment gets no
answer (HTTP clients such as httpx and gradio_client do not retry it). So Caddy's config holds
only what changes rarely (hosts, port, headers, privacy: `caddy_config`), and each app route
names its upstream by a DNS name (`dynamic_upstreams`, source `a`, refreshed every
`REFRESH_S`). A deploy, a restart, a sleep or a wake only rewrites the address table below;
this resolver answers Caddy's next lookup from it.

The table is a JSON file in the run dir, replaced atomically by whoever syncs routes (under
the sync lock), read again by the resolver when it changes. It survives a restart of any
process, Redis included. Spaces that are not `live` (asleep, crashed) stay in the table for
their route's sake but resolve to nothing: Caddy then finds no upstream and sends the visitor
to the control plane's status page, which wakes a sleeping Space.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import socket
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import dns.exception
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
import structlog

from spaceport.settings import Settings
from spaceport.supervisor import start_process

log = structlog.get_logger(__name__)

INTERNAL_DOMAIN = "spaceport.internal"
REFRESH_S = 0.05
"""How long Caddy keeps an answer: a moved app gets its traffic within this time."""
TABLE_FILE = "upstreams.json"
UNKNOWN_ADDRESS = "0.0.0.0"
"""The address of a Space whose app never ran: its route is not live until one does."""
PROBE_NAME = f"probe.{INTERNAL_DOMAIN}"
"""Never a Space's name (those start with `s` and 20 hex digits): answers NXDOMAIN."""


@dataclass(frozen=True)
class Address:
    """A Space's app address (an IP) and whether it takes traffic now. A `retired` one is
    the leftover of a route the table no longer has (a Space paused, stopped or deleted):
    Caddy keeps it, not live, until its next reload, which it saves one (caddy.py)."""

    ip: str
    live: bool
    retired: bool = False


def _endpoint(settings: Settings) -> tuple[str, int]:
    """(host, port) of the resolver (UDP): the API's port number unless set otherwise."""
    return settings.api_host, settings.resolver_port or settings.api_port


def resolver_address(settings: Settings) -> str:
    """`host:port` of the resolver, as Caddy's config and the logs give it."""
    host, port = _endpoint(settings)
    return f"{host}:{port}"


def ipv4(host: str) -> bool:
    try:
        return isinstance(ipaddress.ip_address(host), ipaddress.IPv4Address)
    except ValueError:
        return False


def table_path(settings: Settings) -> Path:
    return settings.run_dir / TABLE_FILE


def read_table(settings: Settings) -> dict[str, Address]:
    """The table by DNS name; empty when there is none yet (or it cannot be read)."""
    return _parse(table_path(settings)) or {}


def _parse(path: Path) -> dict[str, Address] | None:
    """The table in the file; None when there is no file or it is unreadable."""
    try:
        raw = json.loads(path.read_text())
        return {
            str(name): Address(
                str(entry["ip"]), bool(entry["live"]), bool(entry.get("retired", False))
            )
            for name, entry in raw["names"].items()
        }
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def write_table(settings: Settings, table: Mapping[str, Address]) -> dict[str, Address]:
    """Replace the table atomically; returns the one it replaced."""
    path = table_path(settings)
    before = _parse(path)
    if before is not None and dict(table) == before:
        return before
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {
        "names": {
            n: {"ip": a.ip, "live": a.live, **({"retired": True} if a.retired else {})}
            for n, a in sorted(table.items())
        }
    }
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
    tmp.write_text(json.dumps(body, indent=1))
    os.replace(tmp, path)
    return before or {}


class Answers:
    """The live addresses of the table file, read again whenever the file was replaced."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._key: tuple[int, int, int] | None = None
        self._ips: dict[str, str] = {}

    def lookup(self, name: str) -> str | None:
        try:
            st = os.stat(self.path)
            key = (st.st_ino, st.st_mtime_ns, st.st_size)
        except OSError:
            key = None  # no table (yet): keep what we had; nothing at first
        if key is not None and key != self._key:
            table = _parse(self.path)
            if table is not None:  # else half-written by hand: keep the last good one
                self._ips = {n: a.ip for n, a in table.items() if a.live}
                self._key = key
        return self._ips.get(name.rstrip(".").lower())


def answer(query: bytes, answers: Answers) -> bytes | None:
    """The response to one DNS query (None for garbage, which gets no answer)."""
    try:
        msg = dns.message.from_wire(query)
    except dns.exception.DNSException:
        return None
    resp = dns.message.make_response(msg)
    if len(msg.question) != 1:
        resp.set_rcode(dns.rcode.FORMERR)
        return resp.to_wire()
    question = msg.question[0]
    name = question.name.to_text()
    if not name.rstrip(".").lower().endswith(INTERNAL_DOMAIN):
        resp.set_rcode(dns.rcode.REFUSED)  # not a resolver for anything else
        return resp.to_wire()
    resp.flags |= dns.flags.AA
    ip = answers.lookup(name)
    if ip is None:
        resp.set_rcode(dns.rcode.NXDOMAIN)
    elif question.rdtype == dns.rdatatype.A:
        resp.answer.append(dns.rrset.from_text(question.name, 0, "IN", "A", ip))
    return resp.to_wire()  # other types of a known name: no data, no error


def bind(settings: Settings) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(_endpoint(settings))
    return sock


def serve(settings: Settings, sock: socket.socket | None = None) -> None:
    """Answer queries until the socket is closed (one thread: each answer takes microseconds)."""
    sock = sock or bind(settings)
    answers = Answers(table_path(settings))
    log.info("resolver.serving", address=resolver_address(settings))
    while True:
        try:
            query, peer = sock.recvfrom(4096)
        except OSError:
            return  # closed
        reply = answer(query, answers)
        if reply is not None:
            with contextlib.suppress(OSError):
                sock.sendto(reply, peer)


def serve_in_thread(settings: Settings) -> socket.socket:
    """The resolver in a daemon thread of this process (tests); close the socket to stop it."""
    sock = bind(settings)
    threading.Thread(target=serve, args=(settings, sock), name="resolver", daemon=True).start()
    return sock


def answers_probe(settings: Settings, timeout: float = 1.0) -> bool:
    """Whether a resolver answers at `resolver_address` (with NXDOMAIN for the probe name)."""
    query = dns.message.make_query(PROBE_NAME, dns.rdatatype.A)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.sendto(query.to_wire(), _endpoint(settings))
            reply = dns.message.from_wire(sock.recv(4096))
        except (OSError, dns.exception.DNSException):
            return False
    return reply.id == query.id and reply.rcode() == dns.rcode.NXDOMAIN


def ensure_resolver(settings: Settings, say: Callable[[str], None]) -> None:
    """Start the resolver as a process of this node unless it answers (embedded mode: `up`
    starts it, the reconciler starts it again should it stop)."""
    if start_process(
        settings,
        "resolver",
        [sys.executable, "-m", "spaceport.cli.main", "resolver"],
        lambda: answers_probe(settings, timeout=0.2),
        timeout_s=30,
    ):
        say(f"started the app resolver on udp {resolver_address(settings)}")
