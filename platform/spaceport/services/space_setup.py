"""Whole-Space operations that Hugging Face's client asks for in one call.

`create_repo` with secrets and variables, `move_repo` and `duplicate_repo`: each changes the
database and the git repo together, then starts a build the way a push does, so the runtime
brings the app up under its (new) name.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass

import structlog
from sqlalchemy.orm import Session

from spaceport.db.models import Space
from spaceport.errors import Conflict, SpaceportError
from spaceport.flavors import UnknownFlavor
from spaceport.git.commits import copy_branches
from spaceport.git.repos import head_sha, init_repo, repo_path
from spaceport.lifecycle.hardware import resolve_flavor, shared_gpu_refusal
from spaceport.lifecycle.proxy_routes import sync_routes, try_sync_routes
from spaceport.names import check_name
from spaceport.services import quotas, spaces
from spaceport.services import variables as env
from spaceport.settings import Settings

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class EnvEntry:
    """A secret or variable as the client sends it: `{"key", "value", "description"}`."""

    key: str
    value: str
    description: str | None = None


def check_hardware(settings: Settings, name: str | None) -> str | None:
    if name is None:
        return None
    try:
        flavor = resolve_flavor(settings, name)
    except UnknownFlavor as exc:
        raise SpaceportError(str(exc)) from None
    refusal = shared_gpu_refusal(settings, flavor)
    if refusal is not None:
        raise SpaceportError(refusal)
    return flavor.name


def check_env(entries: list[EnvEntry]) -> None:
    """Refuse bad names before anything is created (no half-made Space on a typo)."""
    for e in entries:
        env.check_key(e.key)


def store_env(
    session: Session,
    settings: Settings,
    space: Space,
    secrets: list[EnvEntry],
    variables: list[EnvEntry],
) -> None:
    """Set secrets (encrypted at rest) and variables on a Space, replacing same-named ones."""
    for e in secrets:
        env.set_secret(session, settings, space, e.key, e.value, e.description)
    for e in variables:
        env.set_variable(session, settings, space, e.key, e.value, e.description)


def move_space(session: Session, settings: Settings, space: Space, owner: str, name: str) -> None:
    """Rename a Space: its row, its repo, its route; a rebuild starts it under the new name.

    The running app keeps serving (now on the new host) until the rebuilt one replaces it.
    """
    check_name(owner, "owner")
    check_name(name, "Space name")
    if spaces.find_space(session, owner, name) is not None:
        raise Conflict(f"Cannot move {space.space_id}: {owner}/{name} already exists")
    old_id, old_repo = space.space_id, repo_path(settings, space.owner, space.name)
    new_repo = repo_path(settings, owner, name)
    new_repo.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(old_repo, new_repo)
    space.owner, space.name = owner, name
    session.flush()
    init_repo(settings, owner, name, settings.git_max_push_bytes)
    sha = head_sha(new_repo)
    session.commit()
    sync_routes(settings)
    if sha is not None:
        spaces.enqueue_build(session, space, sha)
    log.info("space.moved", old=old_id, new=space.space_id)


def duplicate_space(
    session: Session,
    settings: Settings,
    source: Space,
    owner: str,
    name: str,
    *,
    private: bool,
    hardware: str | None,
    sleep_time: int | None,
    secrets: list[EnvEntry],
    variables: list[EnvEntry],
    pusher: str,
) -> Space:
    """A new Space with the source's files and variables (never its secrets), then a build."""
    check_env(secrets + variables)
    quotas.check_copy(session, settings, owner, name, hardware)
    copy = spaces.create_space(
        session,
        settings,
        owner,
        name,
        sdk=source.sdk,
        private=private,
        hardware=check_hardware(settings, hardware),
        sleep_time=sleep_time,
        created_by=pusher,
    )
    copy.card_data = dict(source.card_data or {})
    inherited = [
        EnvEntry(v.key, v.value or "", v.description)
        for v in source.variables
        if not v.is_secret and v.value is not None
    ]
    given = {e.key for e in variables}
    store_env(
        session, settings, copy, secrets, [e for e in inherited if e.key not in given] + variables
    )
    copy_branches(repo_path(settings, source.owner, source.name), repo_path(settings, owner, name))
    session.commit()
    try_sync_routes(settings)  # its route, not live until it runs (see lifecycle/proxy_routes.py)
    spaces.on_new_commit(session, copy.id, None, None, audited=None)  # the route records it
    log.info("space.duplicated", source=source.space_id, copy=copy.space_id)
    return copy
