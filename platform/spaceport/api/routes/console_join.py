"""`/join/{secret}`: the console page an invitation link opens (services/invitations.py).

The invitee picks a user name (and a full name and email if they like), gets an account, joins
the invitation's organization, is signed in (a console session, as at `/login`) and sees their
first access token once. The form is CSRF-protected by a double-submit cookie, as the sign-in
form is: there is no session yet to derive a token from.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from spaceport.api.console_pages import page
from spaceport.api.deps import client_address
from spaceport.auth import sessions
from spaceport.auth.principal import principal_of
from spaceport.auth.tokens import lookup_token
from spaceport.db.models import Invitation
from spaceport.db.session import get_session
from spaceport.errors import SpaceportError
from spaceport.names import InvalidName
from spaceport.services import audit, invitations
from spaceport.settings import get_settings

router = APIRouter(include_in_schema=False)
JOIN_CSRF_COOKIE = "spaceport_join_csrf"


def join_form(
    request: Request,
    secret: str,
    invitation: Invitation | None,
    *,
    error: str = "",
    status_code: int = 200,
    fields: dict[str, str] | None = None,
) -> HTMLResponse:
    csrf = sessions.new_login_csrf()
    response = page(
        request,
        "join.html",
        None,
        invitation=invitation,
        secret=secret,
        join_csrf=csrf,
        error=error,
        fields=fields or {},
        status_code=status_code,
    )
    response.set_cookie(
        JOIN_CSRF_COOKIE,
        csrf,
        max_age=3600,
        httponly=True,
        samesite="strict",
        secure=get_settings().url.startswith("https://"),
        path=invitations.JOIN_PATH.rstrip("/"),
    )
    return response


@router.get("/join/{secret}", response_class=HTMLResponse)
def join_page(secret: str, request: Request, session: Session = Depends(get_session)) -> Response:
    try:
        invitation = invitations.usable(session, secret)
    except invitations.InvitationUnusable as exc:
        return join_form(request, secret, None, error=str(exc), status_code=exc.status_code)
    return join_form(request, secret, invitation)


@router.post("/join/{secret}", response_class=HTMLResponse)
def join(
    secret: str,
    request: Request,
    name: str = Form(""),
    fullname: str = Form(""),
    email: str = Form(""),
    csrf_token: str = Form(""),
    session: Session = Depends(get_session),
) -> Response:
    fields = {"name": name, "fullname": fullname, "email": email}
    try:
        invitation = invitations.usable(session, secret)
    except invitations.InvitationUnusable as exc:
        return join_form(request, secret, None, error=str(exc), status_code=exc.status_code)
    cookie = request.cookies.get(JOIN_CSRF_COOKIE, "")
    if not cookie or cookie != csrf_token:
        message = "This form expired or came from another site. Please try again."
        return join_form(request, secret, invitation, error=message, status_code=403)
    try:
        user, token = invitations.accept(
            session, invitation, name.strip(), fullname=fullname.strip(), email=email.strip()
        )
    except invitations.InvitationUnusable as exc:  # used meanwhile, by another sign-up
        session.rollback()
        return join_form(request, secret, None, error=str(exc), status_code=exc.status_code)
    except (SpaceportError, InvalidName) as exc:
        session.rollback()
        invitation = invitations.usable(session, secret)
        code = exc.status_code if isinstance(exc, SpaceportError) else 400
        return join_form(
            request, secret, invitation, error=str(exc), status_code=code, fields=fields
        )
    org = invitation.org.name if invitation.org else None
    audit.record(
        session,
        user.name,
        "user.join",
        namespace=org or user.name,
        target=user.name,
        ip=client_address(request),
        invitation=invitation.id,
        invitedBy=invitation.created_by,
        org=org,
        role=invitation.role,
    )
    value = sessions.start_session(session, user, "write")
    session.commit()
    found = lookup_token(session, value)
    assert found is not None
    request.state.session_token = value  # the page below is the signed-in user's
    response = page(
        request, "joined.html", principal_of(found), token=token, org=org, role=invitation.role
    )
    sessions.set_session_cookie(response, get_settings(), value)
    response.delete_cookie(JOIN_CSRF_COOKIE, path=invitations.JOIN_PATH.rstrip("/"))
    return response
