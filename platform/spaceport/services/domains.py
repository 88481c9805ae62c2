"""Custom domains: an owner gives a Space `demo.example.org`; it routes once its DNS is proven.

The steps, each shown in the Space's runtime (`domains`, Hugging Face's list, with a stage):
1. added (`PENDING`): the owner points the name's DNS at this node. Nothing routes yet.
2. verified: the reconciler asks `http://<domain>/.well-known/spaceport-domain` (the node's
   plain HTTP port); the request reaches this node only if the DNS points here, and the node
   answers with the domain's token (api/app.py). Or the owner puts the token in a TXT record
   `_spaceport-challenge.<domain>` (services/dns_txt.py). Either match sets `verified_at`.
3. routed (`READY`): the Space's route carries the domain as one more host, so the app answers
   on it; with HTTPS by nginx, its certificate is ordered like a Space host's (proxy/tls.py).
Removing the domain drops it from the route at the next sync. A name is unique across Spaces
(the table's unique key), and never the console's or an app host of this node.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable
from datetime import timedelta
from typing import Any
from urllib.parse import urlparse

import httpx
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from spaceport.db.models import Space, SpaceDomain, utcnow
from spaceport.db.session import session_scope
from spaceport.errors import Conflict, NotFound, SpaceportError
from spaceport.lifecycle.proxy_routes import sync_routes
from spaceport.proxy.nginx_conf import DOMAIN_VERIFY_PATH as VERIFY_PATH
from spaceport.proxy.tls_store import has_certificate
from spaceport.services.dns_txt import txt_name, txt_values
from spaceport.settings import Settings

__all__ = [
    "VERIFY_PATH",
    "add_domain",
    "app_host_view",
    "domain_views",
    "remove_domain",
    "space_for_domain",
    "token_for_domain",
    "verify_pending",
]

LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
CHECK_EVERY = timedelta(seconds=30)
"""An unverified domain is asked again at most this often (its DNS may take a while)."""
CHECKS_PER_PASS = 20


def normalize(settings: Settings, domain: str) -> str:
    """The domain in lower case, or an error that says what is wrong with it."""
    name = domain.strip().lower().rstrip(".")
    labels = name.split(".")
    if len(name) > 253 or len(labels) < 2 or not all(LABEL.match(x) for x in labels):
        raise SpaceportError(
            f"'{domain}' is not a domain name: give a full name such as demo.example.org"
        )
    if labels[-1].isdigit():
        raise SpaceportError(f"'{domain}' is an IP address: give a domain name")
    console = (urlparse(settings.url).hostname or "").lower()
    apps = settings.apps_domain.lower()
    if name in (console, apps) or name.endswith("." + apps):
        raise SpaceportError(
            f"'{domain}' is this node's own (the console or an app host): give a domain of yours"
        )
    return name


def add_domain(session: Session, settings: Settings, space: Space, domain: str) -> SpaceDomain:
    if settings.routing == "path":
        raise SpaceportError(
            "custom domains need subdomain routing (SPACEPORT_ROUTING=subdomain): in path mode "
            "every app lives under one host"
        )
    name = normalize(settings, domain)
    taken = session.scalar(select(SpaceDomain).where(SpaceDomain.domain == name))
    if taken is not None:
        if taken.space_id == space.id:
            return taken
        raise Conflict(f"{name} is already a domain of another Space")
    row = SpaceDomain(space_id=space.id, domain=name, token=secrets.token_urlsafe(24))
    session.add(row)
    try:
        session.commit()
    except IntegrityError as exc:  # claimed at the same instant
        session.rollback()
        raise Conflict(f"{name} is already a domain of another Space") from exc
    return row


def remove_domain(session: Session, settings: Settings, space: Space, domain: str) -> None:
    name = domain.strip().lower().rstrip(".")
    row = session.scalar(
        select(SpaceDomain).where(SpaceDomain.space_id == space.id, SpaceDomain.domain == name)
    )
    if row is None:
        raise NotFound(f"{space.space_id} has no domain {name}")
    session.delete(row)
    session.commit()
    if row.verified_at is not None:
        sync_routes(settings)  # it stops routing now, not at the reconciler's next pass


def domain_views(
    rows: Iterable[SpaceDomain], settings: Settings | None = None
) -> list[dict[str, Any]]:
    """Hugging Face's `domains` entries ({domain, stage}) and how far each one got; with
    HTTPS by nginx (`settings` given), whether its certificate is issued yet."""
    out = []
    for row in rows:
        view: dict[str, Any] = {
            "domain": row.domain,
            "stage": "READY" if row.verified_at else "PENDING",
            "verified": row.verified_at is not None,
        }
        if row.verified_at is None:
            view["verification"] = (
                f"point {row.domain}'s DNS (A/AAAA or CNAME) at this node (checked at "
                f"http://{row.domain}{VERIFY_PATH}), or add a TXT record "
                f"{txt_name(row.domain)} with the value {row.token}"
            )
            view["txt_record"] = {"name": txt_name(row.domain), "value": row.token}
            if row.error:
                view["error"] = row.error
        elif settings is not None and settings.https:
            view["certificate"] = "ISSUED" if has_certificate(settings, row.domain) else "PENDING"
        out.append(view)
    return out


def app_host_view(settings: Settings, host: str) -> dict[str, Any]:
    """The app host's entry in the runtime's `domains`. With HTTPS by nginx and no wildcard
    certificate, a new Space's host gets its own certificate on first use: until it is issued,
    a browser can open the https URL only with a security warning (the node's plain HTTP port
    shows a page that says so), so the entry says `PENDING` and why."""
    if not settings.https:
        return {"domain": host, "stage": "READY"}
    if has_certificate(settings, host):
        return {"domain": host, "stage": "READY", "certificate": "ISSUED"}
    return {
        "domain": host,
        "stage": "PENDING",
        "certificate": "PENDING",
        "message": "its HTTPS certificate is being issued (usually under a minute)",
    }


def token_for_domain(host: str) -> str | None:
    """What this node answers on `{host}/.well-known/spaceport-domain`."""
    name = host.rsplit(":", 1)[0].lower() if not host.endswith("]") else host.lower()
    with session_scope() as session:
        return session.scalar(select(SpaceDomain.token).where(SpaceDomain.domain == name))


def space_for_domain(host: str) -> Space | None:
    """The Space a verified custom domain routes to."""
    with session_scope() as session:
        return session.scalar(
            select(Space)
            .join(SpaceDomain, SpaceDomain.space_id == Space.id)
            .where(SpaceDomain.domain == host.lower(), SpaceDomain.verified_at.is_not(None))
        )


def _verify_url(settings: Settings, domain: str) -> str:
    """The plain HTTP port visitors reach: the redirecting port with HTTPS by nginx, else the
    public URL's port."""
    if settings.https:
        port = settings.http_listen.rsplit(":", 1)[-1]
    else:
        port = str(settings.public_port or 80)
    suffix = "" if port == "80" else f":{port}"
    return f"http://{domain}{suffix}{VERIFY_PATH}"


def _http_check(settings: Settings, domain: str, token: str) -> str | None:
    """None when the domain's DNS points here (this node answered its token), else why not."""
    url = _verify_url(settings, domain)
    try:
        resp = httpx.get(url, timeout=5.0, follow_redirects=False)
    except httpx.HTTPError as exc:
        return f"{domain} does not reach this node yet ({exc.__class__.__name__})"
    if resp.status_code != 200 or resp.text.strip() != token:
        return f"{domain} does not reach this node yet (HTTP {resp.status_code} from {url})"
    return None


def _txt_check(settings: Settings, domain: str, token: str, http_error: str) -> str | None:
    """None when the domain's TXT record holds its token, else both checks' reasons."""
    found = txt_values(settings, domain)
    if token in found.values:
        return None
    seen = found.problem or f"{txt_name(domain)} holds {', '.join(found.values)!r}, not the token"
    return f"{http_error}, and {seen}: check its DNS"


def verify_pending(settings: Settings) -> list[str]:
    """One reconciler pass: ask each unverified domain (not checked in the last
    CHECK_EVERY) whether it reaches this node; returns the domains verified now."""
    now = utcnow()
    with session_scope() as session:
        rows = session.scalars(
            select(SpaceDomain)
            .where(SpaceDomain.verified_at.is_(None))
            .where(
                (SpaceDomain.checked_at.is_(None)) | (SpaceDomain.checked_at < now - CHECK_EVERY)
            )
            .order_by(SpaceDomain.id)
            .limit(CHECKS_PER_PASS)
        ).all()
        pending = [(row.id, row.domain, row.token) for row in rows]
    verified = []
    for row_id, domain, token in pending:
        error = _http_check(settings, domain, token)
        if error is not None:
            error = _txt_check(settings, domain, token, error)
        with session_scope() as session:
            row = session.get(SpaceDomain, row_id)
            if row is None:
                continue  # removed meanwhile
            row.checked_at = utcnow()
            row.error = error
            if error is None:
                row.verified_at = row.checked_at
                verified.append(domain)
    if verified:
        sync_routes(settings)  # routed now; with HTTPS its certificate is ordered next
    return verified
