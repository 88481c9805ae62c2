"""Reading the audit log: the whole of it (site admins), an organization's (its admins), a
Space's (those who may change it).

Each answers a page of entries, newest first, with `Link: rel="next"` to the older ones, as
`GET /api/spaces` pages. `?format=jsonl` answers JSON lines (application/x-ndjson): every
matching entry when no `limit` is given (an export), else that page.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session

from spaceport.api.deps import Principal, require_admin, require_principal, writable_space
from spaceport.api.links import set_next_cursor
from spaceport.db.models import Space
from spaceport.db.session import get_session
from spaceport.errors import Forbidden, NotFound
from spaceport.services import access, audit, orgs

router = APIRouter(prefix="/api/v1", tags=["native"])

PAGE_SIZE = 100
NDJSON = "application/x-ndjson"

Format = Literal["json", "jsonl"]
ACTOR = Query(None, description="Only what this user did.")
ACTION = Query(None, description="An action, or a prefix of dotted actions (`space.secret`).")
SINCE = Query(None, description="ISO date or time (UTC), or an age: 30m, 24h, 7d.")
UNTIL = Query(None, description="ISO date or time (UTC), or an age: entries before it.")
LIMIT = Query(None, ge=1, le=1000, description=f"Page size (default {PAGE_SIZE}).")
FORMAT = Query("json", description="jsonl: JSON lines; without `limit`, every entry (export).")


def _answer(
    request: Request,
    response: Response,
    session: Session,
    filters: audit.Filters,
    limit: int | None,
    cursor: str | None,
    format: Format,
) -> list[dict[str, Any]] | Response:
    if format == "jsonl" and limit is None:
        session.commit()  # the export reads in sessions of its own: hold nothing while it streams
        return StreamingResponse(audit.export(filters), media_type=NDJSON)
    found = audit.page(session, filters, limit or PAGE_SIZE, cursor)
    if format == "jsonl":
        lines = "".join(audit.jsonl(item) for item in found.items)
        answer: Response = Response(lines, media_type=NDJSON)
        set_next_cursor(request, answer, found.next_cursor)
        return answer
    set_next_cursor(request, response, found.next_cursor)
    return found.items


@router.get("/audit", response_model=None)
def site_audit(
    request: Request,
    response: Response,
    actor: str | None = ACTOR,
    action: str | None = ACTION,
    namespace: str | None = Query(None, description="Only a user's or organization's."),
    space: str | None = Query(None, description="Only this Space (owner/name)."),
    since: str | None = SINCE,
    until: str | None = UNTIL,
    limit: int | None = LIMIT,
    cursor: str | None = None,
    format: Format = FORMAT,
    _: Principal = Depends(require_admin),
    session: Session = Depends(get_session),
) -> list[dict[str, Any]] | Response:
    """The whole log (site admins): every change on the platform, newest first."""
    filters = audit.Filters(
        actor=actor,
        action=action,
        namespace=namespace,
        space=space,
        since=audit.parse_when(since, "since"),
        until=audit.parse_when(until, "until"),
    )
    return _answer(request, response, session, filters, limit, cursor, format)


@router.get("/orgs/{org}/audit", response_model=None)
def org_audit(
    org: str,
    request: Request,
    response: Response,
    actor: str | None = ACTOR,
    action: str | None = ACTION,
    space: str | None = Query(None, description="Only this Space of the organization."),
    since: str | None = SINCE,
    until: str | None = UNTIL,
    limit: int | None = LIMIT,
    cursor: str | None = None,
    format: Format = FORMAT,
    who: Principal = Depends(require_principal),
    session: Session = Depends(get_session),
) -> list[dict[str, Any]] | Response:
    """What happened in an organization's namespace: its admins and site admins read it (a
    read token is enough); its other members get a 403, everyone else a 404 (as for its other
    routes, an organization one is not in does not exist)."""
    found = orgs.find_org(session, org)
    if found is None or not access.can_see_org(org, who):
        raise NotFound(f"No organization named {org!r} among yours: see GET /api/v1/orgs")
    if not (who.is_admin or who.orgs.get(org) == "admin"):
        raise Forbidden(
            f"Only admins of the organization {org} can read its audit log "
            f"(you are a {who.orgs.get(org)} member)"
        )
    filters = audit.Filters(
        actor=actor,
        action=action,
        namespace=org,
        space=space,
        since=audit.since_born(audit.parse_when(since, "since"), found.created_at),
        until=audit.parse_when(until, "until"),
    )
    return _answer(request, response, session, filters, limit, cursor, format)


@router.get("/spaces/{owner}/{name}/audit", response_model=None)
def space_audit(
    request: Request,
    response: Response,
    actor: str | None = ACTOR,
    action: str | None = ACTION,
    since: str | None = SINCE,
    until: str | None = UNTIL,
    limit: int | None = LIMIT,
    cursor: str | None = None,
    format: Format = FORMAT,
    space: Space = Depends(writable_space),
    session: Session = Depends(get_session),
) -> list[dict[str, Any]] | Response:
    """What was done to one Space: those who may change it read it (others: 403, or 404 when
    they cannot see the Space at all)."""
    filters = audit.for_space(
        session,
        space.space_id,
        space.created_at,
        actor=actor,
        action=action,
        since=audit.parse_when(since, "since"),
        until=audit.parse_when(until, "until"),
    )
    return _answer(request, response, session, filters, limit, cursor, format)
