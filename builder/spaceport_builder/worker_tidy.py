"""What a build worker on another machine (`spaceport worker --builds-only`) cleans up itself.

The control plane's janitor (lifecycle/janitor.py) sees its own engine and data dir only; a
build worker elsewhere has images and repository mirrors of its own (repo_fetch.py), which
would pile up as Spaces come and go. After each build it removes the images it built for
Spaces that no longer exist and their mirrors (a database query, an image list and a directory
listing: milliseconds). Its compiled-dependency stages are pruned by the warm task, as on the
control plane (compiled_deps.prune).
"""

from __future__ import annotations

import fcntl
import shutil

import structlog
from sqlalchemy import select

from spaceport.db.models import Space
from spaceport.db.session import session_scope
from spaceport.engine.base import LABEL_SPACE_PK
from spaceport.engine.docker_backend import DockerBackend
from spaceport.settings import Settings
from spaceport_builder.repo_fetch import mirror_lock, mirrors_dir

log = structlog.get_logger(__name__)


def tidy_quietly(settings: Settings) -> None:
    """`tidy`, after a build: what fails is said in the log, never in the build's result."""
    try:
        tidy(settings)
    except Exception as exc:  # the engine or the database away: the next build tries again
        log.warning("worker.tidy_failed", error=repr(exc)[:300])


def tidy(settings: Settings) -> list[str]:
    """Remove this worker's images and mirrors of deleted Spaces; what it removed."""
    with session_scope() as session:
        rows = session.execute(select(Space.id, Space.owner, Space.name)).all()
    pks = {pk for pk, _, _ in rows}
    names = {(owner, name) for _, owner, name in rows}
    removed: list[str] = []
    engine = DockerBackend(settings)
    for image in engine.images():  # (this worker's builds: its instance's label)
        pk = image.labels.get(LABEL_SPACE_PK, "")
        if pk.isdigit() and int(pk) not in pks:
            for ref in image.tags or [image.id]:
                engine.remove_image(ref)
                removed.append(ref)
    root = mirrors_dir(settings)
    for mirror in sorted(root.glob("*/*.git")) if root.is_dir() else []:
        owner, name = mirror.parent.name, mirror.name.removesuffix(".git")
        if (owner, name) in names:
            continue
        with open(mirror_lock(mirror), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # not while a build fetches into it
            if not _exists(owner, name):  # (made again since the query above: kept)
                shutil.rmtree(mirror, ignore_errors=True)
                removed.append(str(mirror))
    if removed:
        log.info("worker.tidied", removed=removed)
    return removed


def _exists(owner: str, name: str) -> bool:
    with session_scope() as session:
        found = session.scalar(select(Space.id).where(Space.owner == owner, Space.name == name))
    return found is not None
