"""Console pages for Spaces: the card list, one Space's page, and the create form.

Pages render what the database says now; their scripts (static/console.js, static/space.js)
then poll the native summary routes and stream logs, so stages change without a reload.
Every action a page offers is a call to the public HTTP API with the session cookie and the
CSRF header: the console has no powers of its own.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from spaceport.api.console_pages import as_json, page, sign_in_redirect
from spaceport.api.deps import Principal, console_principal
from spaceport.db.session import get_session
from spaceport.front_matter import SDKS
from spaceport.git.repos import GitError
from spaceport.proxy import embedding
from spaceport.services import access, audit, domains, spaces, summaries
from spaceport.services.hardware import hardware_options
from spaceport.services.repo_files import list_files
from spaceport.settings import get_settings
from spaceport.stages import Stage

router = APIRouter(include_in_schema=False)

SLEEP_CHOICES = [
    (None, "Never"),
    (300, "After 5 minutes idle"),
    (900, "After 15 minutes idle"),
    (3600, "After 1 hour idle"),
    (14400, "After 4 hours idle"),
    (86400, "After 1 day idle"),
    (172800, "After 48 hours idle"),
]
# Each SDK's card on the create page: an icon of templates/console/_icons.html, name, line.
SDK_INFO = {
    "gradio": ("window", "Gradio", "Python UI for ML demos"),
    "streamlit": ("chart", "Streamlit", "Data apps in pure Python"),
    "docker": ("box", "Docker", "Your own Dockerfile"),
    "static": ("file", "Static", "HTML, JS and CSS as is"),
}


LIST_PAGE = 100
"""Cards on one page of the Spaces list. Up to this many visible Spaces, all are drawn and the
script filters them as one types; beyond, the server filters and pages (a summary per card
is what a list costs: docs/benchmarks.md, "Control plane at 1,000 Spaces")."""


@router.get("/", response_class=HTMLResponse)
def index(
    request: Request,
    q: str = "",
    stage: str = "",
    owner: str = "",
    offset: int = Query(0, ge=0),
    limit: int = Query(LIST_PAGE, ge=1, le=1000),
    who: Principal | None = Depends(console_principal),
    session: Session = Depends(get_session),
) -> Response:
    settings = get_settings()
    filters = {"search": q, "stage": stage, "owner": owner}
    found = summaries.listing(session, settings, who, **filters, limit=limit, offset=offset)
    paged = found.visible > limit
    cards = found.items
    if not paged:  # every card, the filtered ones hidden
        cards = summaries.listing(session, settings, who).items
    return page(
        request,
        "index.html",
        who,
        nav="spaces",
        spaces=cards,
        shown={s["id"] for s in found.items},
        total=found.visible,
        matching=found.total,
        paged=paged,
        offset=offset,
        limit=limit,
        page_size=LIST_PAGE,
        owners=found.owners,
        counts=found.counts,
        q=q,
        stage=stage,
        owner=owner,
        stages=[s.value for s in Stage],
    )


@router.get("/spaces/{owner}/{name}", response_class=HTMLResponse)
def space_page(
    request: Request,
    owner: str,
    name: str,
    who: Principal | None = Depends(console_principal),
    session: Session = Depends(get_session),
) -> Response:
    settings = get_settings()
    space = spaces.find_space(session, owner, name.removesuffix(".git"))
    if space is None or not access.can_read(space, who):
        return page(
            request,
            "not_found.html",
            who,
            status_code=404,
            what=f"{owner}/{name}",
        )
    summary = summaries.space_summary(session, settings, space)
    try:
        files = list_files(space) if space.head_sha else None
    except GitError:
        files = None
    can_write = access.can_write(space, who)
    data = {
        "space": summary,
        "canWrite": can_write,
        "sdk": space.sdk,
    }
    return page(
        request,
        "space.html",
        who,
        nav="spaces",
        s=summary,
        can_write=can_write,
        files=files,
        hardware=hardware_options(settings) if can_write else [],
        sleep_choices=SLEEP_CHOICES,
        embed=embedding.snippets(summary["appUrl"], space.sdk, space.card_data),
        data=as_json(data),
        **(summaries.env_summary(session, space.id) if can_write else {}),
        domains=domains.domain_views(space.domains, settings) if can_write else [],
        # Those who may change the Space read what was done to it (as GET .../audit answers).
        activity=audit.entries_for_space(session, space.space_id, space.created_at)
        if can_write
        else [],
        https=settings.https,
        app_host=domains.app_host_view(settings, settings.app_host(space.owner, space.name)),
    )


@router.get("/new", response_class=HTMLResponse)
def new_space(
    request: Request,
    who: Principal | None = Depends(console_principal),
    session: Session = Depends(get_session),
) -> Response:
    if who is None:
        return sign_in_redirect(request)
    settings = get_settings()
    return page(
        request,
        "new.html",
        who,
        nav="new",
        sdks=[(k, *SDK_INFO[k]) for k in SDKS],
        hardware=hardware_options(settings),
        default_hardware=settings.default_hardware,
        owners=[who.name, *(o for o, r in sorted(who.orgs.items()) if r in access.CREATE_ROLES)],
    )
