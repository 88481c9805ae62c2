"""Console pages for quotas: `/settings/quota` (yours and your organizations') and
`/admin/quotas` (every namespace, and the form that sets limits through the native API).
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from spaceport.api.console_pages import page, sign_in_redirect
from spaceport.api.deps import Principal, console_principal
from spaceport.db.session import get_session
from spaceport.services import quotas
from spaceport.settings import get_settings

router = APIRouter(include_in_schema=False)


@router.get("/settings/quota", response_class=HTMLResponse)
def quota_page(
    request: Request,
    who: Principal | None = Depends(console_principal),
    session: Session = Depends(get_session),
) -> Response:
    if who is None:
        return sign_in_redirect(request)
    settings = get_settings()
    views = [quotas.view(session, settings, ns) for ns in who.namespaces]
    return page(request, "quota.html", who, nav="quota", quotas=views)


@router.get("/admin/quotas", response_class=HTMLResponse)
def admin_quotas_page(
    request: Request,
    who: Principal | None = Depends(console_principal),
    session: Session = Depends(get_session),
) -> Response:
    if who is None:
        return sign_in_redirect(request)
    if not who.is_admin:
        reason = "Only administrators can open this page."
        return page(request, "not_found.html", who, status_code=403, what="quotas", reason=reason)
    settings = get_settings()
    views = [quotas.view(session, settings, ns) for ns in quotas.namespaces(session)]
    return page(request, "admin_quotas.html", who, nav="quotas", quotas=views)
