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
from collections.abc import Iterable
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


def known(settings: Settings, image_id: str, path: str) -> bool:
    """Whether the archive is kept, or was found too large to keep (not read again)."""
    file = _file(settings, image_id, path)
    return file.exists() or file.with_suffix(".large").exists()


def keep(settings: Settings, image_id: str, path: str, chunks: Iterable[bytes]) -> None:
    """Keep an archive, read from `chunks` (written whole or not at all: a reader never sees
    half of one); one over MAX_BYTES is left unread past that and remembered as too large."""
    target = _file(settings, image_id, path)
    with contextlib.suppress(OSError):
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(f".{os.getpid()}.tmp")
        size = 0
        with tmp.open("wb") as out:
            for chunk in chunks:
                size += len(chunk)
                if size > MAX_BYTES:
                    break
                out.write(chunk)
        if size > MAX_BYTES:
            tmp.unlink(missing_ok=True)
            target.with_suffix(".large").touch()
        else:
            tmp.replace(target)


def prune(settings: Settings, image_ids: set[str], before: float) -> int:
    """Remove what is kept for images not in `image_ids` (those the node had at `before`, a
    `time.time()`: what was written since may be of an image the list missed)."""
    live = {i.removeprefix("sha256:") for i in image_ids}
    removed = 0
    for file in _dir(settings).iterdir() if _dir(settings).is_dir() else ():
        with contextlib.suppress(OSError):
            if file.name.split("-", 1)[0] not in live and file.stat().st_mtime < before:
                file.unlink()
                removed += 1
    return removed
