"""The JSON shapes of a Space, as Hugging Face's API answers them (huggingface_hub parses these).

`space_dict` is what `space_info` reads (siblings, cardData from the README front matter,
runtime, host, sha, lastModified); `space_summary` is one item of `list_spaces`: database
fields plus what the head commit says, cached per commit so listings do not walk every repo.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, object_session

from spaceport.db.models import Space
from spaceport.db.queries import active_deployment
from spaceport.front_matter import ConfigError, split_front_matter
from spaceport.git import browse
from spaceport.git.repos import repo_path
from spaceport.lifecycle import compressor
from spaceport.services.domains import app_host_view, domain_views
from spaceport.settings import Settings
from spaceport.stages import SERVING, Stage
from spaceport.timefmt import iso_hf


def runtime_dict(settings: Settings, space: Space, custom_domains: bool = True) -> dict[str, Any]:
    """Hugging Face's runtime of a Space; `domains` lists the app host, then (unless
    `custom_domains` is off, as in lists) the Space's custom domains with their stages."""
    stage = Stage(space.stage)
    serving = stage in SERVING
    out: dict[str, Any] = {
        "stage": stage.value,
        "hardware": {
            "current": (space.hardware_current or space.hardware_requested) if serving else None,
            "requested": space.hardware_requested,
        },
        "storage": space.storage,
        "gcTimeout": space.sleep_time,
        "replicas": {"current": 1 if serving else 0, "requested": 1},
        "devMode": False,
        "domains": [
            app_host_view(settings, settings.app_host(space.owner, space.name)),
            *domain_views(
                space.domains if custom_domains and object_session(space) is not None else [],
                settings,
            ),
        ],
        "volumes": [],
        "sha": space.head_sha,
    }
    if space.error_message:
        out["errorMessage"] = space.error_message
    session = object_session(space)
    dep = active_deployment(session, space.id) if session is not None and serving else None
    if dep is not None and dep.node:
        out["node"] = dep.node  # cluster mode: the node running it
    if dep is not None and stage == Stage.RUNNING:
        compressed = _compressed(settings, space, dep.container_id)
        if compressed is not None:
            out["compressed"] = compressed
    return out


def _compressed(settings: Settings, space: Space, container: str | None) -> dict[str, Any] | None:
    """Spaceport's own: the running app's idle memory is compressed (lifecycle/compressor.py),
    and no request came since (a request faults back what it touches)."""
    note = compressor.note(settings, container)
    if note is None or not note.moved_bytes:
        return None
    if space.last_request_at is not None and space.last_request_at > note.when:
        return None
    return {
        "since": iso_hf(note.when),
        "movedBytes": note.moved_bytes,
        "residentBytes": note.resident_bytes,
    }


def card_data(readme: str | None, fallback: dict[str, Any] | None) -> dict[str, Any]:
    """The README's front matter; the last built config when the README cannot be parsed."""
    parsed = _front_matter(readme) if readme is not None else None
    return dict(parsed if parsed is not None else (fallback or {}))


@lru_cache(maxsize=1024)
def _front_matter(readme: str) -> dict[str, Any] | None:
    """Parsed once per README text: a list of 1,000 Spaces parsed 1,000 YAML headers a page."""
    try:
        return split_front_matter(readme)
    except ConfigError:
        return None


@lru_cache(maxsize=1024)
def readme_at(repo: Path, sha: str) -> str | None:
    """README.md of a commit; cached, since a commit never changes."""
    return browse.read_text(repo, sha, "README.md")


def _tags(space: Space, card: dict[str, Any]) -> list[str]:
    tags = [space.sdk] if space.sdk else []
    extra = card.get("tags")
    if isinstance(extra, list):
        tags += [str(t) for t in extra]
    if isinstance(card.get("license"), str):
        tags.append(f"license:{card['license']}")
    return list(dict.fromkeys(tags))


def _common(
    settings: Settings, space: Space, card: dict[str, Any], custom_domains: bool = True
) -> dict[str, Any]:
    return {
        "_id": f"space-{space.id}",
        "id": space.space_id,
        "author": space.owner,
        "createdAt": iso_hf(space.created_at),
        "private": space.private,
        "disabled": False,
        "gated": False,
        "likes": 0,
        "trendingScore": 0,
        "sdk": space.sdk or card.get("sdk"),
        "tags": _tags(space, card),
        "host": settings.app_url(space.owner, space.name).rstrip("/"),
        "subdomain": settings.app_host(space.owner, space.name).split(".", 1)[0],
        "cardData": card,
        "runtime": runtime_dict(settings, space, custom_domains),
    }


def space_summary(settings: Settings, space: Space) -> dict[str, Any]:
    """One `list_spaces` item: database fields plus the (cached) date of the head commit."""
    repo = repo_path(settings, space.owner, space.name)
    when = browse.commit_time(repo, space.head_sha) if space.head_sha else None
    readme = readme_at(repo, space.head_sha) if space.head_sha else None
    # a list item: no custom domains (a query per Space; the Space's own view has them)
    out = _common(settings, space, card_data(readme, space.card_data), custom_domains=False)
    out["sha"] = space.head_sha
    out["lastModified"] = iso_hf(when or space.created_at)
    return out


def space_dict(
    session: Session,
    settings: Settings,
    space: Space,
    *,
    sha: str | None = None,
    files_metadata: bool = False,
) -> dict[str, Any]:
    """`space_info`: the Space at commit `sha` (default: the head of main) with its files."""
    repo = repo_path(settings, space.owner, space.name)
    if sha is None:
        sha = browse.resolve(repo, "main")
    card = card_data(readme_at(repo, sha) if sha else None, space.card_data)
    out = _common(settings, space, card)
    when = browse.commit_time(repo, sha) if sha else None
    siblings: list[dict[str, Any]] = []
    for entry in browse.files(repo, sha):
        sibling: dict[str, Any] = {"rfilename": entry.path}
        if files_metadata:
            sibling |= {"size": entry.size, "blobId": entry.oid}
        siblings.append(sibling)
    out |= {
        "sha": sha,
        "lastModified": iso_hf(when or space.created_at),
        "siblings": siblings,
    }
    return out
