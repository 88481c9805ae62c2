"""Owner actions on a Space: delete now; restart, pause and friends grow here.

Each action changes the desired state in the database first, then asks the runtime and the
proxy to follow, so a crash halfway is finished by the reconciler.
"""

from __future__ import annotations

import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session

from spaceport.db.models import Build, Deployment, Space
from spaceport.git.repos import delete_repo
from spaceport.proxy.sync import sync_routes
from spaceport.runtime import make_backend
from spaceport.settings import Settings
from spaceport.stages import BuildStatus

log = structlog.get_logger(__name__)


def delete_space(session: Session, settings: Settings, space: Space) -> None:
    """Remove everything: builds in flight, containers, images, routes, the repo, the row."""
    space_id = space.space_id
    for build in session.scalars(select(Build).where(Build.space_id == space.id)):
        if build.status in (BuildStatus.QUEUED, BuildStatus.RUNNING):
            build.status = BuildStatus.CANCELLED.value
    images = {
        d.image for d in session.scalars(select(Deployment).where(Deployment.space_id == space.id))
    }
    images |= {
        b.image for b in session.scalars(select(Build).where(Build.space_id == space.id)) if b.image
    }
    owner, name = space.owner, space.name
    session.delete(space)
    session.commit()
    sync_routes(settings)
    backend = make_backend(settings)
    for state in backend.list(space_id):
        backend.stop(state.id, timeout=0)
    for image in images:
        backend.remove_image(image)
    delete_repo(settings, owner, name)
    log.info("space.deleted", space=space_id)
