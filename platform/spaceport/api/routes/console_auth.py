"""Sign in with an access token, sign out: the console's only form posts.

The sign-in form is CSRF-protected by a double-submit cookie (there is no session yet), and
failed attempts are rate-limited per client address, so a token cannot be guessed through it.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from spaceport.api.console_pages import page
from spaceport.api.deps import Principal, client_address, console_principal
from spaceport.auth import sessions
from spaceport.auth.tokens import lookup_token
from spaceport.db.session import get_session
from spaceport.services import app_visits, audit
from spaceport.settings import get_settings

router = APIRouter(include_in_schema=False)


def safe_next(value: str | None) -> str:
    """Only same-site paths: `//evil.example` or `https://...` would be an open redirect."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


def login_page(
    request: Request, next_url: str, error: str = "", status_code: int = 200
) -> HTMLResponse:
    value = sessions.new_login_csrf()
    response = page(
        request,
        "login.html",
        None,
        next_url=next_url,
        login_csrf=value,
        error=error,
        status_code=status_code,
    )
    sessions.set_login_csrf_cookie(response, get_settings(), value)
    return response


@router.get("/login", response_class=HTMLResponse)
def login_form(
    request: Request, next: str = "/", who: Principal | None = Depends(console_principal)
) -> Response:
    if who is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    return login_page(request, safe_next(next))


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request,
    token: str = Form(""),
    csrf_token: str = Form(""),
    next: str = Form("/"),
    session: Session = Depends(get_session),
) -> Response:
    settings = get_settings()
    target = safe_next(next)
    client = client_address(request)
    wait = sessions.login_blocked_for(settings, client)
    if wait:
        message = f"Too many failed sign-ins from your address. Try again in {wait} s."
        return login_page(request, target, message, status_code=429)
    cookie = request.cookies.get(sessions.LOGIN_CSRF_COOKIE, "")
    if not cookie or cookie != csrf_token:
        message = "This sign-in form expired or came from another site. Please try again."
        return login_page(request, target, message, status_code=403)
    found = lookup_token(session, token.strip()) if token.strip() else None
    if found is None:
        sessions.record_login_failure(settings, client)
        message = "That token is not valid. Paste an access token (it starts with sp_)."
        return login_page(request, target, message, status_code=401)
    sessions.clear_login_failures(settings, client)
    value = sessions.start_session(
        session,
        found.user,
        found.role,
        scope=found.scope,
        expires_at=found.expires_at,
        signed_in_with=found.id,
    )
    audit.record(session, audit.Actor(found.user.name, found.name, client), "user.signin")
    session.commit()
    response = RedirectResponse(target, status_code=303)
    sessions.set_session_cookie(response, settings, value)
    response.delete_cookie(sessions.LOGIN_CSRF_COOKIE, path="/login")
    return response


@router.post("/logout")
def logout(
    request: Request, csrf_token: str = Form(""), session: Session = Depends(get_session)
) -> Response:
    value = request.cookies.get(sessions.SESSION_COOKIE)
    response = RedirectResponse("/login", status_code=303)
    if value and sessions.csrf_matches(value, csrf_token):
        if (token := lookup_token(session, value)) is not None:
            actor = audit.Actor(token.user.name, token.name, client_address(request))
            audit.record(session, actor, "user.signout")
        sessions.end_session(session, value)
        session.commit()
        app_visits.credentials_changed()  # the app cookies it signed in to end with it
        sessions.clear_session_cookie(response)
    elif value:
        response = RedirectResponse("/", status_code=303)  # forged: keep the session
    return response
