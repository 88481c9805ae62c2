"""Console pages for organizations: the list (with a form to create one) and one
organization's page (members and roles, rename, delete).

Like the other pages they render the current rows and act through the public API
(`/api/v1/orgs...`); a page shows the forms the caller's role may use, the API decides.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from spaceport.api.console_pages import page, sign_in_redirect
from spaceport.api.deps import Principal, console_principal
from spaceport.db.session import get_session
from spaceport.services import access, audit, orgs, quotas
from spaceport.settings import get_settings

router = APIRouter(include_in_schema=False)


@router.get("/organizations", response_class=HTMLResponse)
def orgs_page(
    request: Request,
    who: Principal | None = Depends(console_principal),
    session: Session = Depends(get_session),
) -> Response:
    if who is None:
        return sign_in_redirect(request)
    return page(request, "orgs.html", who, nav="orgs", orgs=orgs.listing(session, who))


@router.get("/organizations/{org}", response_class=HTMLResponse)
def org_page(
    request: Request,
    org: str,
    who: Principal | None = Depends(console_principal),
    session: Session = Depends(get_session),
) -> Response:
    if who is None:
        return sign_in_redirect(request)
    found = orgs.find_org(session, org)
    if found is None or not access.can_see_org(org, who):
        return page(
            request,
            "not_found.html",
            who,
            status_code=404,
            what=f"the organization {org}",
            reason="It does not exist, or you are not one of its members.",
        )
    can_manage = access.org_admin_refusal(org, who) is None
    return page(
        request,
        "org.html",
        who,
        nav="orgs",
        org=orgs.org_dict(session, found, members=True),
        role=who.orgs.get(org),
        can_manage=can_manage,
        roles=access.ORG_ROLES,
        activity=audit.entries_for_org(session, org, found.created_at) if can_manage else None,
        quota=quotas.view(session, get_settings(), found.name),
    )
