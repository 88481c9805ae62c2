"""The Celery client the control plane uses to hand work to builder workers.

The control plane only knows task names, never imports the worker's code: the worker may run
on another machine with another release. Two queues: `build` (builds and the builder's other
image work) and `spaceport` (the control plane's tasks: deploys, standbys' starts). A node's
worker consumes both; a build worker on another machine (`spaceport worker --builds-only`)
consumes `build` only and hands each deploy back through `spaceport` (`chain`).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import redis
import structlog
from celery import Celery
from kombu.exceptions import OperationalError

from spaceport.settings import get_settings

log = structlog.get_logger(__name__)

# Task names: the only thing senders know of the code that runs them.
BUILD_TASK = "spaceport.build"  # the builder (spaceport_builder.tasks)
WARM_TASK = "spaceport.warm_deps"  # the builder: compile a build's dependency stage
STANDBY_TASK = "spaceport.standby"  # the builder: which image and modules a standby takes
DEPLOY_TASK = "spaceport.deploy"  # the control plane (spaceport.lifecycle.tasks)
START_STANDBY_TASK = "spaceport.standby.start"  # the control plane: start that standby

CONTROL_QUEUE = "spaceport"  # the control plane's tasks (and anything not routed)
BUILD_QUEUE = "build"  # the builder's: any build worker, on any machine, takes them
BUILD_TASKS = (BUILD_TASK, WARM_TASK, STANDBY_TASK)


@lru_cache
def celery_app() -> Celery:
    settings = get_settings()
    app = Celery("spaceport", broker=settings.redis_url, backend=None)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        broker_connection_retry_on_startup=True,
        task_default_queue=CONTROL_QUEUE,
        task_routes={name: {"queue": BUILD_QUEUE} for name in BUILD_TASKS},
    )
    return app


# A queued build's task may be lost with Redis (restarted without persistence, or down when
# the push came): this key, written with the task, says it is still in the queue. A queued
# build without it is sent again by the reconciler (queue/recovery.py); duplicates are
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


def send_warm(build_id: int, tries: int = 0, countdown: float = 0) -> None:
    celery_app().send_task(WARM_TASK, args=[build_id, tries], countdown=countdown)


def send_standby(build_id: int, countdown: float = 0, tries: int = 0) -> None:
    if get_settings().standby_ttl_s <= 0:
        return
    celery_app().send_task(STANDBY_TASK, args=[build_id, tries], countdown=countdown)


def chain(name: str, *args: Any) -> Any:
    """Run the task `name` next, after the one running now (a build chains its deploy).

    A worker that has the task registered (the node's worker registers the builder's and the
    control plane's tasks, spaceport.worker) runs it right here, in the slot that just
    finished, so a deploy never waits behind other builds; elsewhere (a build-only worker,
    spaceport_builder.tasks) it is queued for the control plane's worker. The caller
    names the task and never imports the code behind it. Errors of a task run here propagate.
    """
    task = celery_app().tasks.get(name)
    if task is None:
        celery_app().send_task(name, args=list(args))
        return None
    return task(*args)  # in this process, as a plain call (no result backend, no waiting)
