"""The control plane's ASGI app: API routes, git over HTTP, console pages, app status pages."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from urllib.parse import urlparse

import structlog
from fastapi import FastAPI, Request, Response

from spaceport import __version__
from spaceport.api import errors
from spaceport.api.routes import app_status, console, repos, spaces, whoami
from spaceport.auth.bootstrap import ensure_admin
from spaceport.db.migrate import upgrade
from spaceport.db.session import session_scope
from spaceport.git import git_http
from spaceport.reconciler import Reconciler
from spaceport.settings import Settings, get_settings

log = structlog.get_logger(__name__)


def prepare(settings: Settings) -> str | None:
    """Migrate the database and make sure the admin exists; returns a new admin token."""
    settings.ensure_dirs()
    upgrade()
    with session_scope() as session:
        return ensure_admin(session, settings)


def create_app(settings: Settings | None = None, *, reconcile: bool = True) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        token = prepare(settings)
        if token:
            print(f"Admin token (shown once, also in {settings.data / 'admin.token'}): {token}")
        reconciler = Reconciler(settings)
        if reconcile:
            reconciler.start()
        yield
        reconciler.stop()

    app = FastAPI(
        title="Spaceport",
        version=__version__,
        lifespan=lifespan,
        openapi_url="/api/v1/openapi.json",
        docs_url="/api/v1/docs",
    )
    errors.install(app)
    console_host = (urlparse(settings.url).hostname or "localhost").lower()

    @app.middleware("http")
    async def app_hosts(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        # Requests for an app's own host reach us only when it has no live route.
        if app_status.is_app_host(settings, request.headers.get("host", ""), console_host):
            return app_status.app_status(settings, request)
        return await call_next(request)

    @app.get("/api/v1/health", tags=["native"])
    def health() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    for module in (whoami, repos, spaces, git_http, console):
        app.include_router(module.router)
    return app
