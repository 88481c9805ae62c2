"""A directory of an image, archived once per image and kept on the node's disk.

A wake into a node-pool container writes the Space's code into it (lifecycle/node_pool.py).
Reading that code out of the image takes the engine four calls (an inspect for the labels, a
container made from the image, its directory archived, the container removed): 0.2-1.5 s of
a wake on a node whose apps keep its CPUs busy (docs/benchmarks.md). An image never changes,
so the archive is kept by image id, made when the Space goes to deep sleep (off the visitor's
path), and the wake writes it with one call. Archives of images the node no longer has are
removed by the janitor's image sweep.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path

from spaceport.settings import Settings

MAX_BYTES = 32 * 1024 * 1024  # a larger app directory is read from its image each time


def _dir(settings: Settings) -> Path:
    return settings.data / "cache" / "image-files"


def _file(settings: Settings, image_id: str, path: str) -> Path:
    digest = image_id.removeprefix("sha256:")
    return _dir(settings) / f"{digest}-{hashlib.sha256(path.encode()).hexdigest()[:12]}.tar"


def read(settings: Settings, image_id: str, path: str) -> bytes | None:
    """The kept archive of `path` in the image, if there is one."""
    try:
        return _file(settings, image_id, path).read_bytes()
    except OSError:
        return None


def keep(settings: Settings, image_id: str, path: str, archive: bytes) -> None:
    """Keep an archive (written whole or not at all: a reader never sees half of one)."""
    if len(archive) > MAX_BYTES:
        return
    target = _file(settings, image_id, path)
    with contextlib.suppress(OSError):
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(archive)
        tmp.replace(target)


def prune(settings: Settings, image_ids: set[str]) -> int:
    """Remove the archives of images not in `image_ids` (those the node still has)."""
    live = {i.removeprefix("sha256:") for i in image_ids}
    removed = 0
    for file in _dir(settings).glob("*.tar") if _dir(settings).is_dir() else ():
        if file.name.split("-", 1)[0] not in live:
            file.unlink(missing_ok=True)
            removed += 1
    return removed
