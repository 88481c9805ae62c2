"""What every console page shares: the templates, their context, and the safety headers.

Pages render server-side (Jinja) and carry their data for the page's script as JSON, so no
inline script runs and the Content-Security-Policy can forbid them; the console refuses to be
framed (apps are framed, never the console).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from spaceport import __version__
from spaceport.auth.principal import Principal
from spaceport.auth.sessions import SessionMiddleware, clear_session_cookie, csrf_for
from spaceport.services.summaries import STAGE_GROUPS
from spaceport.stages import label

TEMPLATES = Path(__file__).parents[1] / "templates"
templates = Jinja2Templates(directory=str(TEMPLATES))


def ago(value: str | None) -> str:
    """`2026-01-01T10:00:00Z` -> `5 min ago` (pages refresh these live in JS)."""
    if not value:
        return "never"
    then = datetime.fromisoformat(value.rstrip("Z")).replace(tzinfo=UTC)
    seconds = int((datetime.now(UTC) - then).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return "just now"


def filesize(value: int | None) -> str:
    size = float(value or 0)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TB"


templates.env.filters["ago"] = ago
templates.env.filters["filesize"] = filesize

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-src http: https:; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def sign_in_redirect(request: Request) -> RedirectResponse:
    """Send a visitor to the sign-in page, and back here afterwards."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target, safe='/')}", status_code=303)


def csrf_of(request: Request) -> str:
    value = getattr(request.state, "session_token", None) or getattr(
        request.state, "session_token_unverified", None
    )
    return csrf_for(value) if value else ""


def page(
    request: Request,
    template: str,
    who: Principal | None,
    *,
    nav: str = "",
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    """Render a console page with the shared context and headers."""
    response = templates.TemplateResponse(
        request,
        f"console/{template}",
        {
            "who": who,
            "csrf": csrf_of(request) if who else "",
            "nav": nav,
            "version": __version__,
            "stage_groups": json.dumps({str(k): [v, label(k)] for k, v in STAGE_GROUPS.items()}),
            **context,
        },
        status_code=status_code,
        headers=SECURITY_HEADERS,
    )
    if getattr(request.state, "drop_session_cookie", False):
        clear_session_cookie(response)
    return response


def as_json(value: Any) -> str:
    """JSON for a `<script type="application/json">` block: `<` escaped so it cannot close it."""
    return json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


STATIC = Path(__file__).parents[1] / "static"


def install(app: FastAPI) -> None:
    """What the console adds to the app: the session cookie middleware and `/static`."""
    app.add_middleware(SessionMiddleware)
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
