"""Console pages (server-rendered). The full console grows here; this is its first page."""

from __future__ import annotations

import html

from fastapi import APIRouter, Depends
from fastapi.responses import HTMLResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from spaceport.db.models import Space
from spaceport.db.session import get_session
from spaceport.errors import RepoNotFound
from spaceport.services import spaces
from spaceport.settings import get_settings

router = APIRouter(include_in_schema=False)

PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:960px;margin:40px auto;color:#1e293b}}
a{{color:#4f46e5}}.badge{{font-size:12px;padding:2px 8px;border-radius:99px;background:#e2e8f0}}
iframe{{width:100%;height:600px;border:1px solid #e2e8f0;border-radius:8px}}
code,pre{{background:#f1f5f9;padding:2px 6px;border-radius:4px}}</style></head>
<body>{body}</body></html>"""


@router.get("/", response_class=HTMLResponse)
def index(session: Session = Depends(get_session)) -> str:
    settings = get_settings()
    rows = []
    for space in session.scalars(select(Space).where(Space.private.is_(False)).order_by(Space.id)):
        emoji = html.escape(str((space.card_data or {}).get("emoji", "🚀")))
        rows.append(
            f'<li>{emoji} <a href="/spaces/{space.space_id}">{html.escape(space.space_id)}</a> '
            f'<span class="badge">{space.stage}</span> '
            f'<a href="{settings.app_url(space.owner, space.name)}">open app</a></li>'
        )
    body = "<h1>Spaceport</h1><ul>" + "".join(rows) + "</ul>"
    return PAGE.format(title="Spaceport", body=body)


@router.get("/spaces/{owner}/{name}", response_class=HTMLResponse)
def space_page(owner: str, name: str, session: Session = Depends(get_session)) -> str:
    space = spaces.find_space(session, owner, name.removesuffix(".git"))
    if space is None or space.private:
        raise RepoNotFound(f"Repository not found: {owner}/{name}")
    settings = get_settings()
    url = settings.app_url(space.owner, space.name)
    remote = f"{settings.url.rstrip('/')}/spaces/{space.space_id}"
    body = (
        f"<h1>{html.escape(space.space_id)} <span class='badge'>{space.stage}</span></h1>"
        f"<p>App: <a href='{url}'>{url}</a> · git remote: <code>{remote}</code></p>"
        f"<iframe src='{url}'></iframe>"
        "<h3>Embed</h3><pre>"
        + html.escape(f'<iframe src="{url}" width="850" height="450"></iframe>')
        + "</pre>"
    )
    return PAGE.format(title=space.space_id, body=body)
