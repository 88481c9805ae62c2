"""Console sessions: sign in with an access token, get an HttpOnly cookie, CSRF-checked writes.

Signing in issues a dedicated "console session" token (same user and role as the token typed
in) and puts it in a host-only cookie: apps live on other hosts, so they never see it, and
signing out deletes the token, so a stolen cookie dies with the session. The cookie is
`HttpOnly` and `SameSite=Lax`; on top of that every state-changing request that relies on the
cookie must carry a CSRF token derived from the session (`X-CSRF-Token` header, or a form
field that the console's own form handlers check). A cookie-only write without it is served
as anonymous, so routes written without the console in mind stay safe.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import secrets
from datetime import datetime, timedelta
from http.cookies import SimpleCookie

import redis
import structlog
from sqlalchemy import delete, select
from sqlalchemy.orm import Session
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from spaceport.auth.tokens import hash_token, issue_token
from spaceport.db.models import Token, User, utcnow
from spaceport.settings import Settings

log = structlog.get_logger(__name__)

SESSION_COOKIE = "spaceport_session"
LOGIN_CSRF_COOKIE = "spaceport_login_csrf"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
SESSION_TOKEN_NAME = "console session"
SESSION_MAX_AGE = timedelta(days=14)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

LOGIN_MAX_FAILURES = 10
LOGIN_WINDOW_S = 300


def csrf_for(session_token: str) -> str:
    """The CSRF token of a session: derived one-way from the secret cookie value, so it needs
    no storage, and a page on another origin (which cannot read the cookie) cannot forge it."""
    return hashlib.sha256(f"spaceport-csrf:{session_token}".encode()).hexdigest()


def csrf_matches(session_token: str, candidate: str | None) -> bool:
    return bool(candidate) and hmac.compare_digest(csrf_for(session_token), candidate or "")


def is_session_token(token: Token) -> bool:
    return token.name.startswith(SESSION_TOKEN_NAME)


def start_session(
    session: Session,
    user: User,
    role: str,
    *,
    scope: list[str] | None = None,
    expires_at: datetime | None = None,
    signed_in_with: int | None = None,
) -> str:
    """Issue the session's own token; also drops this user's sessions older than the max age.
    A session signed in with a token (`signed_in_with`) keeps its scope and expiry, and works
    only while that token does: the console reaches no more, and no longer, than the token
    typed in, and revoking it signs that browser out."""
    cutoff = utcnow() - SESSION_MAX_AGE
    session.execute(
        delete(Token).where(
            Token.user_id == user.id,
            Token.name.startswith(SESSION_TOKEN_NAME),
            Token.created_at < cutoff,
        )
    )
    stamp = utcnow().strftime("%Y-%m-%d %H:%M")
    name = f"{SESSION_TOKEN_NAME} ({stamp} UTC)"
    return issue_token(
        session,
        user,
        name,
        role,
        scope=scope,
        expires_at=expires_at,
        signed_in_with=signed_in_with,
    )


def end_session(session: Session, session_token: str) -> None:
    """Sign out: the session's token is deleted, so the cookie is worthless from now on."""
    token = session.scalar(select(Token).where(Token.token_hash == hash_token(session_token)))
    if token is not None and is_session_token(token):
        session.delete(token)


def session_expired(token: Token) -> bool:
    return is_session_token(token) and token.created_at < utcnow() - SESSION_MAX_AGE


def set_session_cookie(response: Response, settings: Settings, value: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        value,
        max_age=int(SESSION_MAX_AGE.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=settings.url.startswith("https://"),
        path="/",
    )


def clear_session_cookie(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax")


def new_login_csrf() -> str:
    return secrets.token_urlsafe(24)


def set_login_csrf_cookie(response: Response, settings: Settings, value: str) -> None:
    """Double-submit cookie for the sign-in form (there is no session yet to derive from)."""
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        value,
        max_age=3600,
        httponly=True,
        samesite="strict",
        secure=settings.url.startswith("https://"),
        path="/login",
    )


# -- Sign-in rate limit: failed attempts per client address, counted in Redis. ----------------


def _fail_key(client: str) -> str:
    return f"spaceport:login-failures:{client}"


def login_blocked_for(settings: Settings, client: str) -> int:
    """Seconds this client must wait before trying again (0: it may try now)."""
    try:
        r = redis.Redis.from_url(settings.redis_url, socket_timeout=2)
        failures = int(r.get(_fail_key(client)) or 0)
        if failures < LOGIN_MAX_FAILURES:
            return 0
        return max(int(r.ttl(_fail_key(client))), 1)
    except redis.RedisError as exc:  # no Redis: sign-in still works, unthrottled
        log.warning("login.rate_limit_unavailable", error=str(exc))
        return 0


def record_login_failure(settings: Settings, client: str) -> None:
    try:
        r = redis.Redis.from_url(settings.redis_url, socket_timeout=2)
        key = _fail_key(client)
        with r.pipeline() as pipe:
            pipe.incr(key)
            pipe.expire(key, LOGIN_WINDOW_S, nx=True)
            pipe.execute()
    except redis.RedisError as exc:
        log.warning("login.rate_limit_unavailable", error=str(exc))


def clear_login_failures(settings: Settings, client: str) -> None:
    with contextlib.suppress(redis.RedisError):
        redis.Redis.from_url(settings.redis_url, socket_timeout=2).delete(_fail_key(client))


# -- The middleware that turns the cookie into `request.state.session_token`. ----------------


def _cookie(scope: Scope, name: str) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == b"cookie":
            jar: SimpleCookie = SimpleCookie()
            try:
                jar.load(value.decode("latin-1"))
            except Exception:
                continue
            if name in jar:
                return jar[name].value
    return None


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return None


class SessionMiddleware:
    """Attach the session cookie's token to the request, where `optional_principal` reads it.

    Reads always get it; writes only with a matching `X-CSRF-Token` header. Otherwise the token
    is left in `session_token_unverified`, for the console's form handlers to check against
    the form's CSRF field.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and _header(scope, b"authorization") is None:
            value = _cookie(scope, SESSION_COOKIE)
            if value:
                state = scope.setdefault("state", {})
                if scope["method"] in SAFE_METHODS or csrf_matches(
                    value, _header(scope, CSRF_HEADER.encode())
                ):
                    state["session_token"] = value
                else:
                    state["session_token_unverified"] = value
        await self.app(scope, receive, send)
