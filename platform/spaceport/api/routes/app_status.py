"""What a visitor of an app's URL gets from the platform itself, never a bare 502.

The proxy sends here every app request it has no live route for (a Space that is building,
starting, asleep, paused, failed, or unknown), an app request whose container did not answer
(`X-Spaceport-Proxy-Error`), and the platform paths under every app's URL (`/.spaceport/...`:
the private-Space check and sign-in handshake, the Gradio embed script). Browsers get a status
page that follows the Space live (stage, build log) and switches to the app once it answers;
API clients asking for JSON get JSON. A sleeping Space is woken by the visit.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import structlog
from fastapi import Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy import select

from spaceport.api.deps import Principal, token_from_request
from spaceport.db.models import Space
from spaceport.db.session import session_scope
from spaceport.proxy import app_access, embedding
from spaceport.proxy.base import AUTHZ_PATH, PLATFORM_PATH
from spaceport.services import access, app_visits, domains
from spaceport.services.builds import build_log_tail
from spaceport.services.quotas import QuotaExceeded
from spaceport.settings import Settings
from spaceport.stages import STATUS_MESSAGES, Stage
from spaceport.stages import label as stage_label

log = structlog.get_logger(__name__)
templates = Jinja2Templates(directory=str(Path(__file__).parents[2] / "templates"))

NOT_ANSWERING = "The app is not answering right now; it is probably restarting."
OVER_QUOTA = "This Space is asleep and stays asleep: its owner has no room left in their quota."
COLORS = {True: "#fbbf24", False: "#f87171"}
LOG_STAGES = {Stage.BUILDING, Stage.RUNNING_BUILDING}
LOG_LINES = 60
STATUS_HEADERS = {"x-spaceport-status": "1", "cache-control": "no-store"}
_GRADIO_ENTRY = re.compile(r"""["'](?:\./|/)?((?:[^"']*/)?assets/index-[A-Za-z0-9_-]+\.js)["']""")
_AUTHZ_TTL_S = 5.0
_authz_cache: dict[tuple[str, str, str, int], tuple[float, bool]] = {}
_gradio_entries: dict[str, str] = {}


@dataclass
class Visit:
    """An app request: which Space (None: no Space lives there), and the path inside the app."""

    space: Space | None
    public_host: str
    app_path: str  # "/" or "/{owner}/{name}/"
    rest: str  # the request path relative to the app, starting with "/"
    asked: str = "/"  # the path and query the visitor asked for (forward auth: the original)


# --- which Space ------------------------------------------------------------------------------


def _hostname(host: str) -> str:
    return host.rsplit(":", 1)[0].lower() if not host.endswith("]") else host.lower()


def is_app_host(settings: Settings, host: str, console_host: str) -> bool:
    hostname = _hostname(host)
    if hostname == console_host:
        return False
    if settings.routing == "path":
        return hostname == (urlparse(settings.apps_origin).hostname or "").lower()
    return hostname.endswith("." + settings.apps_domain)


def may_be_custom_domain(settings: Settings, host: str, console_host: str) -> bool:
    """Whether `host` could be a Space's custom domain (services/domains.py), without asking
    the database: not the console, not an app host, not an IP address or `localhost` (how
    the API is reached directly)."""
    hostname = _hostname(host)
    if hostname == console_host or settings.routing == "path" or "." not in hostname:
        return False
    if hostname.replace(".", "").isdigit() or hostname.startswith("["):
        return False
    return not hostname.endswith("." + settings.apps_domain)


def _custom_domain(hostname: str) -> Space | None:
    return domains.space_for_domain(hostname)


def custom_domain_space(host: str) -> Space | None:
    """The Space whose verified custom domain `host` is (a database query: call it from a
    thread, and only where `may_be_custom_domain`)."""
    return _custom_domain(_hostname(host))


def space_for_host(settings: Settings, host: str) -> Space | None:
    """Subdomain mode: the Space whose app host (or custom domain) this is."""
    hostname = _hostname(host)
    if not hostname.endswith("." + settings.apps_domain):
        return _custom_domain(hostname)
    label = hostname.removesuffix("." + settings.apps_domain)
    return app_visits.space_for_host_label(settings, label)


def space_for_path(path: str) -> tuple[Space | None, str]:
    """Path mode: the Space named by the first two path segments, and the rest of the path."""
    parts = path.split("/", 3)
    if len(parts) < 3 or not parts[1] or not parts[2]:
        return None, path
    space = app_visits.space_by_id(f"{parts[1]}/{parts[2]}")
    return space, "/" + (parts[3] if len(parts) > 3 else "")


def resolve(settings: Settings, request: Request) -> Visit:
    host = request.headers.get("host", "")
    asked = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if request.url.path == AUTHZ_PATH:  # forward auth: the request it asks about
        asked = request.headers.get("x-forwarded-uri", "/") or "/"
        # The proxy names the Space (a client naming one itself only learns its own rights).
        named = request.headers.get("x-spaceport-space")
        space = app_visits.space_by_id(named) if named else None
        if space is not None:
            app_path = settings.app_path(space.owner, space.name)
            return Visit(space, host, app_path, AUTHZ_PATH, asked)
    if settings.routing == "path":
        space, rest = space_for_path(urlparse(asked).path)
        app_path = settings.app_path(space.owner, space.name) if space else "/"
        if request.url.path == AUTHZ_PATH:
            rest = AUTHZ_PATH
        return Visit(space, host, app_path, rest, asked)
    return Visit(space_for_host(settings, host), host, "/", request.url.path, asked)


# --- who may see it ---------------------------------------------------------------------------


def _app_tokens(request: Request) -> list[str]:
    """Tokens a request to an app host may carry: `Authorization` (Bearer or git's Basic), and
    `x-hf-authorization`, where gradio_client sends the token so that the app's own
    Authorization header stays the app's."""
    found = [token_from_request(request)]
    scheme, _, value = request.headers.get("x-hf-authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        found.append(value.strip())
    return [t for t in found if t]


def _principal(settings: Settings, request: Request, host: str) -> Principal | None:
    """The owner's token (either header), else this app host's cookie; None: a stranger."""
    cookie = request.cookies.get(app_access.APP_COOKIE)
    grant = app_access.cookie_grant(settings, cookie, _hostname(host))
    return app_visits.visitor(_app_tokens(request), grant)


def may_open(settings: Settings, request: Request, visit: Visit) -> bool:
    space = visit.space
    if space is None:
        return False
    if not space.private:
        return True
    cred = "|".join(_app_tokens(request)) + "|" + (request.cookies.get(app_access.APP_COOKIE) or "")
    key = (cred, space.space_id, visit.public_host.lower(), app_visits.credentials_generation())
    cached = _authz_cache.get(key)
    if cached and cached[0] > time.monotonic():
        return cached[1]
    allowed = access.can_read(space, _principal(settings, request, visit.public_host))
    if len(_authz_cache) > 10_000:
        _authz_cache.clear()
    _authz_cache[key] = (time.monotonic() + _AUTHZ_TTL_S, allowed)
    return allowed


# --- answers ----------------------------------------------------------------------------------


def wants_json(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


def public_url(settings: Settings, visit: Visit, *, root: bool = False) -> str:
    """The public URL the visitor asked for (a platform path: the app's root), or the root."""
    scheme = urlparse(settings.url).scheme or "http"
    asked = visit.asked
    if root or urlparse(asked).path.startswith(visit.app_path.rstrip("/") + PLATFORM_PATH):
        asked = visit.app_path
    return f"{scheme}://{visit.public_host}{asked}"


def not_found(settings: Settings, request: Request, visit: Visit) -> Response:
    """Unknown and private-to-someone-else look the same: a 404 with a sign-in link."""
    if wants_json(request):
        return JSONResponse({"error": "Space not found"}, 404, headers=STATUS_HEADERS)
    sign_in = app_access.start_url(settings, public_url(settings, visit))
    context = {"not_found": True, "sign_in": sign_in, "space_id": "", "color": COLORS[False]}
    return templates.TemplateResponse(
        request, "status.html", context, status_code=404, headers=STATUS_HEADERS
    )


HELD_METHODS = ("GET", "HEAD")
WAKING = (Stage.SLEEPING.value, Stage.APP_STARTING.value, Stage.RUNNING_APP_STARTING.value)
HOLD_POLL_S = 0.05
HOLD_POLL_SLOW_S = 0.2
HOLD_FAST_S = 3.0


def _stage_of(space_pk: int) -> str | None:
    with session_scope() as session:
        return session.scalar(select(Space.stage).where(Space.id == space_pk))


async def _woken(space_pk: int, hold_s: float) -> bool:
    """Whether the waking Space serves within `hold_s` (RUNNING is said once its route is in:
    lifecycle/deployer.py, sleeper.py); False as soon as its start ends any other way. Asks
    every 50 ms for the default hold's length (a wake served a moment after a poll waits
    that long again: at 200 ms this cost a wake near a second a fifth of it), then 200 ms."""
    started = time.monotonic()
    while True:
        stage = await asyncio.to_thread(_stage_of, space_pk)
        if stage == Stage.RUNNING.value:
            return True
        waited = time.monotonic() - started
        if stage not in WAKING or waited >= hold_s:
            return False
        await asyncio.sleep(HOLD_POLL_S if waited < HOLD_FAST_S else HOLD_POLL_SLOW_S)


def _same_url(request: Request) -> str:
    """The path and query the visitor asked for, for `Location`: as sent (still
    percent-encoded), and never `//host/...`, which a browser would follow to that host."""
    raw = request.scope.get("raw_path") or request.url.path.encode()
    path = "/" + raw.decode("latin-1").lstrip("/\\")
    query = request.scope.get("query_string", b"").decode("latin-1")
    return path + (f"?{query}" if query else "")


async def status_page(settings: Settings, request: Request, visit: Visit) -> Response:
    space = visit.space
    assert space is not None
    stage = Stage(space.stage)
    refusal = None
    if stage == Stage.SLEEPING:
        from spaceport.services import operations

        try:
            woke = await asyncio.to_thread(operations.wake, settings, space.id)
            log.info("app.wake", space=space.space_id, started=woke)
        except QuotaExceeded as exc:  # it stays asleep: the visitor learns that, not the
            # namespace's other Spaces the full message names (some may be private)
            refusal = OVER_QUOTA
            log.info("app.wake_over_quota", space=space.space_id, reason=str(exc))
        if refusal is None and request.method in HELD_METHODS and settings.wake_hold_s > 0:
            if await _woken(space.id, settings.wake_hold_s):  # the app serves: send it on
                return RedirectResponse(_same_url(request), 307, headers=STATUS_HEADERS)
            now = await asyncio.to_thread(_stage_of, space.id)
            stage = Stage(now) if now else stage
    proxy_error = request.headers.get("x-spaceport-proxy-error")
    message, waiting = STATUS_MESSAGES.get(stage, ("", False))
    if refusal is not None:
        message, waiting = OVER_QUOTA, False
    if proxy_error and stage == Stage.RUNNING:
        message = NOT_ANSWERING
    lines = (
        await asyncio.to_thread(build_log_tail, settings, space.id, LOG_LINES)
        if stage in LOG_STAGES
        else []
    )
    headers = dict(STATUS_HEADERS)
    headers.update(dict(embedding.response_headers(space.card_data)))
    headers["retry-after"] = "2" if waiting else "30"
    code = 502 if proxy_error and stage == Stage.RUNNING else 503
    error = refusal or (None if waiting else space.error_message)
    if wants_json(request):
        body: dict[str, Any] = {
            "space": space.space_id,
            "stage": stage.value,
            "message": message,
            "error": error,
            "log": lines,
        }
        return JSONResponse(body, code, headers=headers)
    context = {
        "space_id": space.space_id,
        "emoji": (space.card_data or {}).get("emoji") or "",  # the README's, else none
        "stage": stage.value,
        "stage_label": stage_label(stage),
        "message": message,
        "waiting": waiting,
        "error": error,
        "log": "\n".join(lines),
        "color": COLORS[waiting],
    }
    return templates.TemplateResponse(
        request, "status.html", context, status_code=code, headers=headers
    )


def auth_callback(settings: Settings, request: Request, visit: Visit) -> Response:
    """Step 3 of the sign-in handshake (see proxy/app_access.py): ticket in, cookie out."""
    ticket = request.query_params.get("ticket", "")
    grant = app_access.redeem_ticket(settings, ticket, _hostname(visit.public_host))
    if grant is None:
        return HTMLResponse(
            "<h1>Sign-in link expired</h1><p>Open the app again and sign in once more.</p>",
            400,
            headers=STATUS_HEADERS,
        )
    target = request.query_params.get("next") or visit.app_path
    if not target.startswith(visit.app_path) or target.startswith("//") or "\\" in target:
        target = visit.app_path
    resp = RedirectResponse(target, status_code=303, headers=STATUS_HEADERS)
    resp.set_cookie(
        app_access.APP_COOKIE,
        app_access.issue_cookie(settings, grant),
        max_age=app_access.COOKIE_TTL_S,
        path=visit.app_path,
        httponly=True,
        samesite="lax",
        secure=settings.url.startswith("https://"),
    )
    return resp


async def gradio_script(settings: Settings, visit: Visit) -> Response:
    """`{app}/.spaceport/gradio.js`: Gradio's own front end, by a stable name, for the
    `<gradio-app>` web component on pages of any origin (Gradio names it by a hash)."""
    space = visit.space
    assert space is not None
    upstream = await asyncio.to_thread(app_visits.upstream, space.id)
    headers = {"access-control-allow-origin": "*", "cache-control": "no-cache"}
    if space.sdk != "gradio" or upstream is None:
        return Response(
            f"// {space.space_id} is not a running Gradio app.\n", 404, headers, "text/javascript"
        )
    entry = _gradio_entries.get(upstream)
    if entry is None:
        try:
            async with httpx.AsyncClient(timeout=10, trust_env=False, verify=False) as client:
                page = await client.get(f"http://{upstream}/", headers={"host": visit.public_host})
            found = _GRADIO_ENTRY.search(page.text)
        except httpx.HTTPError:
            found = None
        if found is None:
            return Response(
                f"// {space.space_id}: Gradio's front end was not found in the app's page.\n",
                502,
                headers,
                "text/javascript",
            )
        entry = _gradio_entries[upstream] = found.group(1)
    app_url = public_url(settings, visit, root=True)
    return Response(f'import("{app_url}{entry}");\n', 200, headers, "text/javascript")


async def platform_path(settings: Settings, request: Request, visit: Visit) -> Response:
    """`{app}/.spaceport/...`: the platform's own paths on every app's URL."""
    name = visit.rest.removeprefix(PLATFORM_PATH + "/")
    if name == "auth" and visit.space is not None:
        return await asyncio.to_thread(auth_callback, settings, request, visit)
    allowed = await asyncio.to_thread(may_open, settings, request, visit)
    if not allowed:
        return not_found(settings, request, visit)
    if name == "authz":
        return Response(status_code=200, headers={"cache-control": "no-store"})
    if name == "gradio.js":
        return await gradio_script(settings, visit)
    return not_found(settings, request, visit)


async def respond(settings: Settings, request: Request) -> Response:
    """Answer a request for an app's URL that reached the control plane."""
    visit = await asyncio.to_thread(resolve, settings, request)
    if visit.rest.startswith(PLATFORM_PATH + "/"):
        return await platform_path(settings, request, visit)
    if visit.space is None or not await asyncio.to_thread(may_open, settings, request, visit):
        return not_found(settings, request, visit)
    return await status_page(settings, request, visit)
