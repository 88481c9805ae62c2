"""The standby task: after a deploy, choose what the Space's standby container starts from and
chain the control plane's task that starts it (lifecycle/standby.py).

The builder knows what the runtime cannot: which image holds exactly the build's compiled
dependencies (the image its next code-only version will be built on) and which modules the
app may have imported ahead of it (prewarm.py). In cluster mode it pushes that image to the
registry first: the standby runs on whichever node Swarm picks. The task runs
`standby_delay_s` after the deploy, and again when the warm task has compiled the
dependencies; like warming it waits while builds or app starts are under way, so it never
slows one down.
"""

from __future__ import annotations

import structlog

from spaceport import queue
from spaceport.build_report import compiled_fingerprint, prewarm
from spaceport.db.models import Build
from spaceport.db.session import session_scope
from spaceport.settings import Settings
from spaceport_builder import compiled_deps, registry_push
from spaceport_builder.warm_job import node_busy

log = structlog.get_logger(__name__)

RETRY_S = 5
MAX_TRIES = 60


def prepare_standby(settings: Settings, build_id: int, tries: int = 0) -> bool:
    """Start the standby of the Space `build_id` deployed; True when one was started."""
    if settings.standby_ttl_s <= 0:
        return False
    with session_scope() as session:
        build = session.get(Build, build_id)
        if build is None:
            return False
        space_pk, report = build.space_id, dict(build.cache_report or {})
    modules = prewarm(report)
    fp = compiled_fingerprint(report)
    if not modules or fp is None or not compiled_deps.is_ready(settings, fp):
        return False  # nothing to import ahead, or the compiled dependencies are not built yet
    if node_busy():
        if tries < MAX_TRIES:
            queue.send_standby(build_id, countdown=RETRY_S, tries=tries + 1)
        return False
    image = compiled_deps.tag(fp)
    if registry_push.enabled(settings):  # cluster mode: whichever node runs it pulls it

        def warn(line: str) -> None:
            log.warning("standby.unpublished", build=build_id, error=line)

        if registry_push.publish(settings, image, image, warn) is None:
            return False
    started = bool(queue.chain(queue.START_STANDBY_TASK, space_pk, build_id, image, modules))
    log.info("standby.prepared" if started else "standby.skipped", build=build_id, image=image)
    return started
