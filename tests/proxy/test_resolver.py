"""The resolver that tells Caddy where each app runs, asked over real UDP as Caddy asks it."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import pytest

from spaceport.proxy.resolver import (
    Address,
    answers_probe,
    resolver_address,
    serve_in_thread,
    table_path,
    write_table,
)
from spaceport.settings import Settings


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def settings(tmp_path: Path) -> Iterator[Settings]:
    settings = Settings(data=tmp_path, resolver_port=_free_udp_port())
    sock = serve_in_thread(settings)
    yield settings
    sock.close()


def ask(settings: Settings, name: str, rdtype: str = "A") -> dns.message.Message:
    host, port = resolver_address(settings).rsplit(":", 1)
    query = dns.message.make_query(name, dns.rdatatype.from_text(rdtype))
    return dns.query.udp(query, host, port=int(port), timeout=2)


def ips(reply: dns.message.Message) -> list[str]:
    return [rr.address for rrset in reply.answer for rr in rrset]


def test_live_apps_resolve_and_others_do_not(settings: Settings) -> None:
    write_table(
        settings,
        {
            "sa.spaceport.internal": Address("172.18.0.5", True),
            "sb.spaceport.internal": Address("172.18.0.6", False),
        },
    )
    assert ips(ask(settings, "sa.spaceport.internal.")) == ["172.18.0.5"]
    assert ips(ask(settings, "SA.Spaceport.Internal.")) == ["172.18.0.5"]  # names are case-blind
    assert ask(settings, "sb.spaceport.internal.").rcode() == dns.rcode.NXDOMAIN  # asleep
    assert ask(settings, "nobody.spaceport.internal.").rcode() == dns.rcode.NXDOMAIN
    aaaa = ask(settings, "sa.spaceport.internal.", "AAAA")
    assert aaaa.rcode() == dns.rcode.NOERROR and not aaaa.answer
    assert ask(settings, "example.org.").rcode() == dns.rcode.REFUSED  # resolves nothing else
    assert answers_probe(settings)


def test_a_new_table_answers_at_once_and_a_broken_one_changes_nothing(settings: Settings) -> None:
    write_table(settings, {"sa.spaceport.internal": Address("172.18.0.5", True)})
    assert ips(ask(settings, "sa.spaceport.internal.")) == ["172.18.0.5"]
    write_table(settings, {"sa.spaceport.internal": Address("172.18.0.9", True)})
    assert ips(ask(settings, "sa.spaceport.internal.")) == ["172.18.0.9"]
    table_path(settings).write_text("{half a file")  # someone's hand edit
    assert ips(ask(settings, "sa.spaceport.internal.")) == ["172.18.0.9"]
    write_table(settings, {})  # every Space gone
    assert ask(settings, "sa.spaceport.internal.").rcode() == dns.rcode.NXDOMAIN


def test_garbage_gets_no_answer_and_the_resolver_keeps_serving(settings: Settings) -> None:
    host, port = resolver_address(settings).rsplit(":", 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.3)
        s.sendto(b"\x00not dns", (host, int(port)))
        with pytest.raises(TimeoutError):
            s.recv(512)
    assert answers_probe(settings)


def test_probe_is_false_without_a_resolver(tmp_path: Path) -> None:
    assert not answers_probe(Settings(data=tmp_path, resolver_port=_free_udp_port()), timeout=0.3)
