"""The Celery client the control plane uses to hand work to builder workers.

The control plane only knows task names, never imports the worker's code: the worker may run
on another machine with another release.
"""

from __future__ import annotations

from functools import lru_cache

from celery import Celery

from spaceport.settings import get_settings

BUILD_TASK = "spaceport.build"
DEPLOY_TASK = "spaceport.deploy"


@lru_cache
def celery_app() -> Celery:
    settings = get_settings()
    app = Celery("spaceport", broker=settings.redis_url, backend=None)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        broker_connection_retry_on_startup=True,
        task_default_queue="spaceport",
    )
    return app


def send_build(build_id: int) -> str:
    return str(celery_app().send_task(BUILD_TASK, args=[build_id]).id)


def send_deploy(space_pk: int, build_id: int | None = None) -> str:
    return str(celery_app().send_task(DEPLOY_TASK, args=[space_pk, build_id]).id)
