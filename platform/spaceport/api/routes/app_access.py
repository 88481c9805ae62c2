"""The console's half of the private-app sign-in handshake (see proxy/app_access.py).

`GET /api/v1/app-access/start?next={app url}` runs on the console's origin, where the console
session cookie lives: a visitor who is not signed in goes to `/login` and comes back; a signed-in
one is sent on to the app's host with a one-minute ticket that the app host trades for its own
cookie. Only URLs on this node's app origins, or a verified custom domain of one of its Spaces,
are accepted, so the ticket cannot be sent away.
"""

from __future__ import annotations

import html
from urllib.parse import urlencode, urlparse

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from spaceport.api.console_pages import sign_in_redirect
from spaceport.api.deps import Principal, console_principal
from spaceport.errors import SpaceportError
from spaceport.proxy import app_access
from spaceport.services import domains
from spaceport.settings import Settings, get_settings

router = APIRouter(tags=["native"])


def callback_url(settings: Settings, user: str, app_url: str, token_id: int) -> str:
    """The app host's URL that trades a fresh ticket for `user` (signed in with the console
    session `token_id`, which the app cookie lives no longer than) for the app's cookie."""
    target = urlparse(app_url)
    app_root = "/"
    if settings.routing == "path":  # the app is the first two segments: /{owner}/{name}/
        parts = target.path.split("/")
        app_root = f"/{parts[1]}/{parts[2]}/" if len(parts) > 2 and parts[2] else "/"
    query = urlencode(
        {
            "ticket": app_access.issue_ticket(
                settings, user, (target.hostname or "").lower(), token_id
            ),
            "next": target.path + (f"?{target.query}" if target.query else ""),
        }
    )
    callback = app_access.CALLBACK_PATH.lstrip("/")
    return f"{target.scheme}://{target.netloc}{app_root}{callback}?{query}"


def is_app_url(settings: Settings, url: str) -> bool:
    """An app host of this node, or a custom domain that routes to one of its Spaces: its
    ticket is bound to that host, and its cookie is set there (api/routes/app_status.py)."""
    if app_access.is_app_url(settings, url):
        return True
    parsed = urlparse(url)
    host = parsed.hostname or ""
    if settings.routing != "subdomain" or parsed.scheme not in ("http", "https") or not host:
        return False
    return domains.space_for_domain(host) is not None


@router.get(app_access.START_PATH, response_class=HTMLResponse)
def start_app_sign_in(
    request: Request, next: str, who: Principal | None = Depends(console_principal)
) -> Response:
    """Sign the console's user in to the app at `next` (an app URL), then open it there."""
    settings = get_settings()
    if not is_app_url(settings, next):
        raise SpaceportError(
            f"next must be the URL of an app on this Spaceport (got {next!r}); "
            "open the app and use its sign-in link"
        )
    if who is None:
        return sign_in_redirect(request)
    assert who.token_id is not None  # a console session is a token
    link = html.escape(callback_url(settings, who.name, next, who.token_id))
    # A page, not a redirect: coming straight from the console's sign-in form, a redirect to
    # another origin would be blocked by the console's CSP (`form-action 'self'`).
    body = (
        f'<!doctype html><meta charset="utf-8"><meta http-equiv="refresh" content="0;url={link}">'
        f'<title>Opening the app</title><p>Opening the app… <a href="{link}">continue</a></p>'
    )
    headers = {"cache-control": "no-store", "referrer-policy": "no-referrer"}
    return HTMLResponse(body, headers=headers)
