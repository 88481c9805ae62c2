"""The Celery worker: `spaceport worker` runs this app (Redis broker, late acks).

Late acks plus reject-on-worker-lost mean a worker killed mid-build gives its task back to the
queue instead of losing it; `claim()` in build_job accepts such a redelivered build.
"""

from __future__ import annotations

from spaceport.queue import BUILD_TASK, DEPLOY_TASK, celery_app
from spaceport.settings import get_settings

app = celery_app()


@app.task(name=BUILD_TASK, acks_late=True)
def build_task(build_id: int) -> bool:
    from spaceport.runtime.deployer import deploy
    from spaceport_builder.build_job import run_build_job

    settings = get_settings()
    if not run_build_job(settings, build_id):
        return False
    from spaceport.db.models import Build
    from spaceport.db.session import session_scope

    with session_scope() as session:
        build = session.get(Build, build_id)
        if build is None:
            return False
        space_pk = build.space_id
    return deploy(settings, space_pk, build_id)


@app.task(name=DEPLOY_TASK, acks_late=True)
def deploy_task(space_pk: int, build_id: int | None = None) -> bool:
    from spaceport.runtime.deployer import deploy

    return deploy(get_settings(), space_pk, build_id)
