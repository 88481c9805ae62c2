"""The builder's Celery tasks: build, warm the compiled dependencies, choose a standby's image.

Late acks plus reject-on-worker-lost mean a worker killed mid-build gives its task back to the
queue instead of losing it; the redelivered build waits for the Space's build lease and runs
again (build_job.claim counts attempts). The reconciler catches the rest (queue/recovery.py). The
node's worker process (spaceport.worker) registers these next to the control plane's tasks.
"""

from __future__ import annotations

from spaceport.queue import BUILD_TASK, DEPLOY_TASK, STANDBY_TASK, WARM_TASK, celery_app
from spaceport.settings import get_settings
from spaceport_builder.build_job import build_and_deploy
from spaceport_builder.standby_job import prepare_standby
from spaceport_builder.warm_job import warm_deps
from spaceport_builder.worker_tidy import tidy_quietly

app = celery_app()


@app.task(name=BUILD_TASK, acks_late=True, reject_on_worker_lost=True)
def build_task(build_id: int) -> bool:
    settings = get_settings()
    try:
        return build_and_deploy(settings, build_id)
    finally:
        if DEPLOY_TASK not in app.tasks:  # a build worker elsewhere: no janitor sees its disk
            tidy_quietly(settings)


@app.task(name=WARM_TASK, acks_late=True)
def warm_task(build_id: int, tries: int = 0) -> bool:
    return warm_deps(get_settings(), build_id, tries)


@app.task(name=STANDBY_TASK, acks_late=True)
def standby_task(build_id: int, tries: int = 0) -> bool:
    return prepare_standby(get_settings(), build_id, tries)
