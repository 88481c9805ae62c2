"""A custom domain's DNS proof: a TXT record `_spaceport-challenge.<domain>` holding its token.

The other way to prove control of a domain than the HTTP check (services/domains.py): for a
name whose DNS cannot point at this node yet (served elsewhere until the move, behind a CDN),
or a node whose plain HTTP port the checker cannot reach. As ACME's DNS-01 does, the owner adds
a record under a label of our own, so no record of theirs changes. Asked with dnspython's stub
resolver, through the system's nameservers or the ones in `domain_dns_servers`.
"""

from __future__ import annotations

from dataclasses import dataclass

import dns.exception
import dns.nameserver
import dns.resolver

from spaceport.settings import Settings

TXT_LABEL = "_spaceport-challenge"
LIFETIME_S = 5.0
"""How long one lookup may take, all nameservers and retries together."""


def txt_name(domain: str) -> str:
    return f"{TXT_LABEL}.{domain}"


@dataclass(frozen=True)
class TxtAnswer:
    values: tuple[str, ...]
    problem: str | None = None  # why nothing was found (no such name, a timeout), for the owner


def _nameserver(spec: str) -> dns.nameserver.Do53Nameserver:
    """`1.2.3.4`, `1.2.3.4:5353`, `::1` or `[::1]:5353`."""
    host, port = spec, 53
    if spec.startswith("["):
        host, _, rest = spec[1:].partition("]")
        port = int(rest.lstrip(":") or 53)
    elif spec.count(":") == 1:
        host, _, tail = spec.partition(":")
        port = int(tail)
    return dns.nameserver.Do53Nameserver(host, port)


def resolver(settings: Settings) -> dns.resolver.Resolver:
    if not settings.domain_dns_servers:
        found = dns.resolver.Resolver()  # /etc/resolv.conf
    else:
        found = dns.resolver.Resolver(configure=False)
        found.nameservers = [_nameserver(s) for s in settings.domain_dns_servers]
    found.lifetime = LIFETIME_S
    found.cache = None  # an owner who just added the record is asked again, not answered stale
    return found


def txt_values(settings: Settings, domain: str) -> TxtAnswer:
    """The TXT strings at `_spaceport-challenge.<domain>` (each record's strings joined)."""
    name = txt_name(domain)
    try:
        answer = resolver(settings).resolve(name, "TXT", search=False)
    except dns.resolver.NXDOMAIN:
        return TxtAnswer((), f"no DNS name {name}")
    except dns.resolver.NoAnswer:
        return TxtAnswer((), f"no TXT record at {name}")
    except dns.exception.DNSException as exc:
        return TxtAnswer((), f"DNS lookup of {name} failed ({exc.__class__.__name__})")
    values = tuple(b"".join(r.strings).decode(errors="replace") for r in answer)
    return TxtAnswer(values)
