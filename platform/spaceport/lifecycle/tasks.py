"""The control plane's Celery tasks: a deploy (chained after a successful build, or sent on its
own) and the start of a standby (named by the builder's standby task).

The builder builds and reports; it chains these by name (`queue.chain`) and never imports them.
"""

from __future__ import annotations

from spaceport.lifecycle import standby
from spaceport.lifecycle.deployer import deploy
from spaceport.queue import DEPLOY_TASK, START_STANDBY_TASK, celery_app, send_standby
from spaceport.settings import get_settings

app = celery_app()


@app.task(name=DEPLOY_TASK, acks_late=True)
def deploy_task(space_pk: int, build_id: int | None = None) -> bool:
    """Deploy the Space (its newest image, or the build's); after a build's deploy, its next
    code-only version gets a standby to start in (the builder's standby task picks it)."""
    settings = get_settings()
    deployed = deploy(settings, space_pk, build_id)
    if deployed and build_id is not None:
        send_standby(build_id, countdown=settings.standby_delay_s)
    return deployed


@app.task(name=START_STANDBY_TASK, acks_late=True)
def start_standby_task(space_pk: int, build_id: int, image: str, modules: list[str]) -> bool:
    """Start the Space's standby from `image` with `modules` imported ahead."""
    return standby.prepare(get_settings(), space_pk, build_id, image, modules)
