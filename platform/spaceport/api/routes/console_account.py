"""Console pages for people and the platform: access tokens, users (admins), the admin view.

Like the Space pages, they render the current rows and act through the native API
(`/api/v1/tokens`, `/api/v1/users`, `/api/v1/admin/overview`, `/api/v1/audit`).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from spaceport.api.console_pages import page, sign_in_redirect
from spaceport.api.deps import Principal, console_principal
from spaceport.db.session import get_session
from spaceport.errors import SpaceportError
from spaceport.services import audit, invitations, overview, users
from spaceport.services.users import token_dict
from spaceport.settings import get_settings

router = APIRouter(include_in_schema=False)


@router.get("/settings/tokens", response_class=HTMLResponse)
def tokens_page(
    request: Request,
    who: Principal | None = Depends(console_principal),
    session: Session = Depends(get_session),
) -> Response:
    if who is None:
        return sign_in_redirect(request)
    tokens = [token_dict(t) for t in users.tokens_of(session, who.user)]
    return page(
        request,
        "tokens.html",
        who,
        nav="tokens",
        tokens=[t for t in tokens if t["kind"] == "token"],
        sessions=[t for t in tokens if t["kind"] == "session"],
        current=getattr(request.state, "session_token_id", None),
        url=get_settings().url.rstrip("/"),
        scope_choices=users.scope_choices(session, who.user),
    )


def forbidden(request: Request, who: Principal) -> Response:
    return page(
        request,
        "not_found.html",
        who,
        status_code=403,
        what="the admin pages",
        reason="Only administrators can open this page.",
    )


@router.get("/admin/users", response_class=HTMLResponse)
def users_page(
    request: Request,
    who: Principal | None = Depends(console_principal),
    session: Session = Depends(get_session),
) -> Response:
    if who is None:
        return sign_in_redirect(request)
    if not who.is_admin:
        return forbidden(request, who)
    people = users.users_with_space_counts(session)
    people.sort(key=lambda u: (not u["isAdmin"], u["name"]))
    days = get_settings().invitation_days
    links = [invitations.as_dict(i) for i in invitations.visible(session, who)]
    return page(
        request,
        "users.html",
        who,
        nav="users",
        users=people,
        invitation_days=days,
        invitations=[i for i in links if i["status"] == "pending"],
    )


@router.get("/admin", response_class=HTMLResponse)
def admin_page(
    request: Request,
    who: Principal | None = Depends(console_principal),
    session: Session = Depends(get_session),
) -> Response:
    if who is None:
        return sign_in_redirect(request)
    if not who.is_admin:
        return forbidden(request, who)
    view = overview.overview(session, get_settings())
    return page(request, "admin.html", who, nav="admin", view=view)


AUDIT_FILTERS = ("actor", "action", "namespace", "space", "since", "until")


@router.get("/admin/audit", response_class=HTMLResponse)
def audit_page(
    request: Request,
    cursor: str | None = None,
    who: Principal | None = Depends(console_principal),
    session: Session = Depends(get_session),
) -> Response:
    """The whole audit log for admins: filters as in GET /api/v1/audit, its export link, and
    the next page of older entries."""
    if who is None:
        return sign_in_redirect(request)
    if not who.is_admin:
        return forbidden(request, who)
    given = {k: request.query_params.get(k, "").strip() for k in AUDIT_FILTERS}
    chosen = {k: v for k, v in given.items() if v}
    error, next_query = "", ""
    entries: list[dict[str, Any]] = []
    try:
        filters = audit.Filters(
            actor=chosen.get("actor"),
            action=chosen.get("action"),
            namespace=chosen.get("namespace"),
            space=chosen.get("space"),
            since=audit.parse_when(chosen.get("since"), "since"),
            until=audit.parse_when(chosen.get("until"), "until"),
        )
        found = audit.page(session, filters, 100, cursor)
        entries = found.items
        if found.next_cursor:
            next_query = urlencode({**chosen, "cursor": found.next_cursor})
    except SpaceportError as exc:  # a time or cursor it cannot read: say so above the table
        error = str(exc)
    return page(
        request,
        "audit.html",
        who,
        nav="audit",
        filters=given,
        entries=entries,
        error=error,
        next_query=next_query,
        export_query=urlencode({**chosen, "format": "jsonl"}),
    )
