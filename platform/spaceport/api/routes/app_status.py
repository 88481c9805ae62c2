"""What a visitor of an app host sees when the proxy has no live route for it.

Caddy sends every host it has no route for to the control plane; here the host is mapped back
to its Space and the visitor gets a status page (or JSON), never a bare 502.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy import select

from spaceport.db.models import Space
from spaceport.db.session import session_scope
from spaceport.services import access
from spaceport.settings import Settings
from spaceport.stages import Stage

templates = Jinja2Templates(directory=str(Path(__file__).parents[2] / "templates"))

MESSAGES = {
    Stage.BUILDING: ("This Space is building. It will start as soon as the build is done.", True),
    Stage.RUNNING_BUILDING: ("A new version is building.", True),
    Stage.APP_STARTING: ("The app is starting.", True),
    Stage.RUNNING_APP_STARTING: ("The app is starting.", True),
    Stage.RUNNING: ("The app is starting.", True),
    Stage.SLEEPING: ("This Space is asleep: waking it up.", True),
    Stage.PAUSED: ("This Space has been paused by its owner.", False),
    Stage.STOPPED: ("This Space is stopped.", False),
    Stage.BUILD_ERROR: ("The build failed.", False),
    Stage.CONFIG_ERROR: ("The Space's configuration has an error.", False),
    Stage.RUNTIME_ERROR: ("The app crashed.", False),
    Stage.NO_APP_FILE: ("No app yet: push an app file to this Space.", False),
    Stage.DELETING: ("This Space is being deleted.", False),
}
COLORS = {True: "#fbbf24", False: "#f87171"}


def space_for_host(settings: Settings, host: str) -> Space | None:
    label = host.split(":", 1)[0].lower().removesuffix("." + settings.apps_domain)
    with session_scope() as session:
        for space in session.scalars(select(Space)):
            if settings.app_host(space.owner, space.name).split(".", 1)[0] == label:
                session.expunge(space)
                return space
    return None


def is_app_host(settings: Settings, host: str, console_host: str) -> bool:
    hostname = host.split(":", 1)[0].lower()
    return hostname != console_host and hostname.endswith("." + settings.apps_domain)


def app_status(settings: Settings, request: Request) -> Response:
    space = space_for_host(settings, request.headers.get("host", ""))
    wants_json = "application/json" in request.headers.get("accept", "")
    headers = {"x-spaceport-status": "1", "cache-control": "no-store"}
    if space is None or (space.private and not access.can_read(space, None)):
        if wants_json:
            return JSONResponse({"error": "Space not found"}, 404, headers=headers)
        return HTMLResponse("<h1>404</h1><p>No Space lives at this address.</p>", 404, headers)
    stage = Stage(space.stage)
    message, waiting = MESSAGES.get(stage, ("", False))
    if wants_json:
        body = {
            "space": space.space_id,
            "stage": stage.value,
            "message": message,
            "error": space.error_message,
        }
        return JSONResponse(body, 503, headers=headers)
    return templates.TemplateResponse(
        request,
        "status.html",
        {
            "space_id": space.space_id,
            "emoji": (space.card_data or {}).get("emoji", "🚀"),
            "stage": stage.value,
            "stage_label": stage.value.replace("_", " ").title(),
            "message": message,
            "waiting": waiting,
            "error": None if waiting else space.error_message,
            "color": COLORS[waiting],
        },
        status_code=503,
        headers=headers,
    )
