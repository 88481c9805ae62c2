"""The Celery worker: `spaceport worker` runs this app (Redis broker, late acks).

Late acks plus reject-on-worker-lost mean a worker killed mid-build gives its task back to the
queue instead of losing it; the redelivered build waits for the Space's build lease and runs
again (build_job.claim counts attempts). The reconciler catches the rest (recovery.py).
"""

from __future__ import annotations

from spaceport.queue import BUILD_TASK, DEPLOY_TASK, celery_app
from spaceport.settings import get_settings
from spaceport_builder.standby_job import STANDBY_TASK
from spaceport_builder.warm_job import WARM_TASK

app = celery_app()


@app.task(name=BUILD_TASK, acks_late=True, reject_on_worker_lost=True)
def build_task(build_id: int) -> bool:
    from spaceport_builder.build_job import build_and_deploy

    return build_and_deploy(get_settings(), build_id)


@app.task(name=WARM_TASK, acks_late=True)
def warm_task(build_id: int, tries: int = 0) -> bool:
    from spaceport_builder.warm_job import warm_deps

    return warm_deps(get_settings(), build_id, tries)


@app.task(name=DEPLOY_TASK, acks_late=True)
def deploy_task(space_pk: int, build_id: int | None = None) -> bool:
    from spaceport.runtime.deployer import deploy

    return deploy(get_settings(), space_pk, build_id)


@app.task(name=STANDBY_TASK, acks_late=True)
def standby_task(build_id: int, tries: int = 0) -> bool:
    from spaceport_builder.standby_job import prepare_standby

    return prepare_standby(get_settings(), build_id, tries)
