"""The control plane's ASGI app: API routes, git over HTTP, console pages, app status pages."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlparse

import structlog
from fastapi import Depends, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from spaceport import __version__
from spaceport.api import console_pages, errors
from spaceport.api.deps import header_principal
from spaceport.api.drain import DrainBeforeError
from spaceport.api.request_metrics import RequestMetrics
from spaceport.api.routes import (
    admin,
    app_access,
    app_status,
    audit_log,
    console,
    console_account,
    console_auth,
    console_join,
    console_orgs,
    console_quotas,
    embed,
    git_http,
    hf_commits,
    hf_files,
    hf_spaces,
    invitations,
    metrics,
    orgs,
    quotas,
    repos,
    space_details,
    space_ops,
    spaces,
    users,
    whoami,
)
from spaceport.composition import prepare
from spaceport.proxy.nginx_conf import DOMAIN_VERIFY_PATH
from spaceport.reconciler import Reconciler
from spaceport.services import domains
from spaceport.settings import Settings, get_settings

log = structlog.get_logger(__name__)


class AppHostMiddleware:
    """Requests for an app's own host reach the control plane only when the app has no live
    route: answer them with the Space's status page. Pure ASGI (not BaseHTTPMiddleware), so
    streamed request bodies such as git pushes pass through untouched."""

    def __init__(self, app: ASGIApp, settings: Settings, console_host: str) -> None:
        self.app, self.settings, self.console_host = app, settings, console_host

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            host = dict(scope.get("headers") or []).get(b"host", b"").decode("latin-1")
            if scope.get("path") == DOMAIN_VERIFY_PATH:  # is a custom domain's DNS ours?
                token = await run_in_threadpool(domains.token_for_domain, host)
                answer = PlainTextResponse(
                    token or "not a domain of this node", 200 if token else 404
                )
                await answer(scope, receive, send)
                return
            if app_status.is_app_host(self.settings, host, self.console_host) or (
                app_status.may_be_custom_domain(self.settings, host, self.console_host)
                and await run_in_threadpool(app_status.custom_domain_space, host) is not None
            ):
                response = await app_status.respond(self.settings, Request(scope, receive))
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


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
    console_pages.install(app)  # session cookie middleware, /static
    console_host = (urlparse(settings.url).hostname or "localhost").lower()

    app.add_middleware(AppHostMiddleware, settings=settings, console_host=console_host)
    if settings.metrics:  # times every request, app hosts' status pages too (route "other")
        app.add_middleware(RequestMetrics)
    app.add_middleware(DrainBeforeError)  # outermost: also for errors the middlewares send

    # A wrong token is a 401 everywhere (deps.header_principal); git answers it in its own words.
    checked = [Depends(header_principal)]

    @app.get("/api/v1/health", tags=["native"], dependencies=checked)
    def health() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    # hf_files before git_http: /spaces/{owner}/{name}/resolve/... is a file download, not git.
    for module in (whoami, repos, spaces, hf_spaces, hf_commits, hf_files):
        app.include_router(module.router, dependencies=checked)
    app.include_router(git_http.router)
    app.include_router(console.router, dependencies=checked)
    for module in (
        users,
        orgs,
        admin,
        space_details,
        space_ops,
        console_auth,
        console_account,
        console_orgs,
    ):
        app.include_router(module.router, dependencies=checked)
    app.include_router(audit_log.router, dependencies=checked)  # the audit log's readers
    for module in (quotas, console_quotas):  # limits per user and organization
        app.include_router(module.router, dependencies=checked)
    for module in (invitations, console_join):  # sign-up by invitation link
        app.include_router(module.router, dependencies=checked)
    for module in (embed, metrics, app_access):  # proxy: embedding, traffic, private apps
        app.include_router(module.router, dependencies=checked)
    return app
