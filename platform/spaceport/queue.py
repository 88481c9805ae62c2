"""The Celery client the control plane uses to hand work to builder workers.

The control plane only knows task names, never imports the worker's code: the worker may run
on another machine with another release.
"""

from __future__ import annotations

from functools import lru_cache

import redis
import structlog
from celery import Celery
from kombu.exceptions import OperationalError

from spaceport.settings import get_settings

log = structlog.get_logger(__name__)

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


# A queued build's task may be lost with Redis (restarted without persistence, or down when
# the push came): this key, written with the task, says it is still in the queue. A queued
# build without it is sent again by the reconciler (builder's recovery.py); duplicates are
# harmless, the worker skips a build that is no longer queued.
SENT_TTL_S = 24 * 3600


def sent_key(build_id: int) -> str:
    return f"spaceport:build:{build_id}:sent"


def send_build(build_id: int) -> str:
    """Queue the build; raises (redis/kombu errors) when Redis does not answer."""
    client = redis.Redis.from_url(get_settings().redis_url, socket_timeout=5)
    client.set(sent_key(build_id), 1, ex=SENT_TTL_S)
    return str(celery_app().send_task(BUILD_TASK, args=[build_id]).id)


def try_send_build(build_id: int) -> str | None:
    """`send_build`, or None when the queue is down: the reconciler sends it once it is back."""
    try:
        return send_build(build_id)
    except (redis.RedisError, OSError, OperationalError) as exc:
        log.warning("build.queue_unavailable", build=build_id, error=str(exc))
        return None


def send_deploy(space_pk: int, build_id: int | None = None) -> str:
    return str(celery_app().send_task(DEPLOY_TASK, args=[space_pk, build_id]).id)
