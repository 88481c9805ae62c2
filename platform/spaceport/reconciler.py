"""The reconciler: make Docker and the proxy match the database, forever.

Runs as a thread in the API process. Each pass: containers of running Spaces that died (dockerd
restart, crash) are started again, and the proxy's route table is reloaded when it differs from
the database (Caddy restarted, a change another process made).
"""

from __future__ import annotations

import asyncio
import threading

import structlog
from sqlalchemy import select

from spaceport.db.models import Deployment, Space
from spaceport.db.session import session_scope
from spaceport.proxy import make_proxy
from spaceport.proxy.sync import desired_routes, sync_routes
from spaceport.runtime import make_backend
from spaceport.runtime.base import RuntimeBackendError
from spaceport.settings import Settings
from spaceport.stages import DeploymentStatus

log = structlog.get_logger(__name__)


def revive_containers(settings: Settings) -> int:
    """Start again the stopped containers of Spaces that should be running."""
    backend = make_backend(settings)
    revived = 0
    with session_scope() as session:
        rows = session.execute(
            select(Space, Deployment)
            .join(Deployment, Deployment.space_id == Space.id)
            .where(Deployment.status == DeploymentStatus.ACTIVE, Space.desired == "running")
        ).all()
        for space, dep in rows:
            if not dep.container_id:
                continue
            state = backend.inspect(dep.container_id)
            if state is not None and state.running:
                if state.upstream and state.upstream != dep.upstream:
                    dep.upstream = state.upstream
                continue
            if state is None:
                continue  # gone for good: the runtime issue's redeploy handles it
            try:
                state = backend.restart(dep.container_id)
                dep.upstream = state.upstream
                revived += 1
                log.info("reconcile.revived", space=space.space_id)
            except RuntimeBackendError as exc:
                log.warning("reconcile.revive_failed", space=space.space_id, error=str(exc))
    return revived


def routes_match(settings: Settings) -> bool:
    with session_scope() as session:
        want = {r.space_id: r.upstream for r in desired_routes(session, settings)}
    have = asyncio.run(make_proxy(settings).get_all_routes())
    return want == {k: r.upstream for k, r in have.items()}


def reconcile_once(settings: Settings) -> None:
    try:
        revive_containers(settings)
    except Exception:
        log.exception("reconcile.containers_failed")
    try:
        if not routes_match(settings):
            sync_routes(settings)
    except Exception as exc:
        log.warning("reconcile.routes_failed", error=str(exc))


class Reconciler:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="reconciler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            reconcile_once(self.settings)
            self._stop.wait(self.settings.reconcile_interval_s)
