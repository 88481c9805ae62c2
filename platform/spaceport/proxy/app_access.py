"""Who may open a private Space's app, on the app's own host.

Apps live on hosts apart from the console, so the console's session cookie never reaches
them (an app must not see it). A signed-in owner gets into their private app through a
redirect handshake instead:

1. the app host answers a stranger with a 404 page whose "sign in" link goes to the console:
   `{console}/api/v1/app-access/start?next={app url}` (`start_url`);
2. there the console session says who they are (or sends them to `/login` first); the
   console mints a one-minute, single-use ticket for that app host (`issue_ticket`) and
   redirects to `{app}/.spaceport/auth?ticket=...&next=...`;
3. the app host redeems the ticket (`redeem_ticket`) and sets its own host-only cookie
   (`APP_COOKIE`, `issue_cookie`), then redirects to the page asked for.

API clients send the owner's token instead (`Authorization: Bearer ...`); the proxy drops that
header before the app sees it. Tickets and cookies are Fernet tokens (signed and encrypted with
the node's secret key) that name the user, the host and the console session (its token id) they
were issued from, so a cookie of one app is worth nothing on another, and signing out, revoking
that session or deactivating the user ends the app cookie too (services/app_visits.visitor).
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from urllib.parse import urlencode, urlparse

import redis
from cryptography.fernet import InvalidToken

from spaceport.auth.crypto import decrypt, encrypt
from spaceport.proxy.base import PLATFORM_PATH
from spaceport.settings import Settings

APP_COOKIE = "spaceport_app_session"
TICKET_TTL_S = 60
COOKIE_TTL_S = 24 * 3600
START_PATH = "/api/v1/app-access/start"
CALLBACK_PATH = PLATFORM_PATH + "/auth"
CONSOLE_LOGIN_PATH = "/login"


@dataclass(frozen=True)
class Grant:
    """A user's right to one app host until `expires` (epoch seconds), for as long as the
    console session `token_id` it came from lasts."""

    user: str
    host: str
    expires: float
    nonce: str = ""
    token_id: int | None = None


def _seal(settings: Settings, kind: str, grant: Grant) -> str:
    body = {
        "k": kind,
        "u": grant.user,
        "h": grant.host,
        "e": grant.expires,
        "n": grant.nonce,
        "t": grant.token_id,
    }
    return encrypt(settings, json.dumps(body)).decode()


def _open(settings: Settings, kind: str, value: str, host: str) -> Grant | None:
    try:
        body = json.loads(decrypt(settings, value.encode()))
    except (InvalidToken, ValueError, TypeError):
        return None
    if not isinstance(body, dict) or body.get("k") != kind:
        return None
    token_id = body.get("t")
    grant = Grant(
        str(body["u"]),
        str(body["h"]),
        float(body["e"]),
        str(body.get("n", "")),
        int(token_id) if isinstance(token_id, int) else None,
    )
    if grant.host != host.lower() or grant.expires < time.time() or grant.token_id is None:
        return None  # no session behind it (a cookie from before grants named one): sign in
    return grant


def issue_ticket(settings: Settings, user: str, host: str, token_id: int) -> str:
    """A one-minute ticket for `user` on `host`, from their console session `token_id`."""
    grant = Grant(
        user, host.lower(), time.time() + TICKET_TTL_S, secrets.token_urlsafe(12), token_id
    )
    return _seal(settings, "ticket", grant)


def redeem_ticket(settings: Settings, ticket: str, host: str) -> Grant | None:
    """The grant a ticket carries, once: a replayed ticket (from a log, say) is refused."""
    grant = _open(settings, "ticket", ticket, host)
    if grant is None:
        return None
    client = redis.Redis.from_url(settings.redis_url, socket_timeout=5)
    if not client.set(f"spaceport:app-ticket:{grant.nonce}", 1, nx=True, ex=TICKET_TTL_S * 2):
        return None
    return grant


def issue_cookie(settings: Settings, grant: Grant) -> str:
    """The app host's cookie for a redeemed ticket: same user and session, a day long."""
    cookie = Grant(grant.user, grant.host, time.time() + COOKIE_TTL_S, "", grant.token_id)
    return _seal(settings, "cookie", cookie)


def cookie_grant(settings: Settings, value: str | None, host: str) -> Grant | None:
    """The grant an app cookie carries for this host, or None (none, forged, expired)."""
    return _open(settings, "cookie", value, host) if value else None


def start_url(settings: Settings, app_url: str) -> str:
    """The console link that signs its visitor in to the app at `app_url`."""
    return f"{settings.url.rstrip('/')}{START_PATH}?{urlencode({'next': app_url})}"


def is_app_url(settings: Settings, url: str) -> bool:
    """Whether `url` is on an app origin of this node: the only places the handshake sends
    a ticket to (anything else would be an open redirect that leaks tickets)."""
    parsed = urlparse(url)
    host = (parsed.hostname or "").lower()
    console = (urlparse(settings.url).hostname or "").lower()
    if parsed.scheme not in ("http", "https") or not host or host == console:
        return False
    if settings.routing == "path":
        apps = urlparse(settings.apps_origin)
        return host == (apps.hostname or "").lower() and parsed.port == apps.port
    return host.endswith("." + settings.apps_domain.lower())
