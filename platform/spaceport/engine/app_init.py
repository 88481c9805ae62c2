"""spaceport-init: the first process of every app container, which caps its log *rate*.

The engine caps an app's log on disk (json-file rotation) and never blocks on it (non-blocking
mode), but a flood still costs the node: the engine encodes every line, and the few seconds of
log the rotation keeps are all flood. So every app runs under a small init (`app_init.c`):
its stdout and stderr pass at most `log_rate` bytes/s each, a `log_burst` at once, and the rest
is dropped with one "[spaceport] N bytes of stdout dropped" line per second. It also forwards
signals, reaps orphans and exits with the app's status, as tini does.

It is compiled here once per node (its source's digest names the binary under the data dir),
statically so any image runs it (scratch, distroless, musl), and copied into each container
before it starts: no host mount, and the image stays the one that was built. Images keep their
own entrypoint (tini included) after it.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import tarfile
from functools import cache
from pathlib import Path

from spaceport.settings import Settings

SOURCE = Path(__file__).with_name("app_init.c")
DIRECTORY = "/.spaceport"
PATH = f"{DIRECTORY}/init"


class AppInitError(RuntimeError):
    """The init could not be built on this node (no C compiler or no static C library)."""


def enabled(settings: Settings) -> bool:
    return settings.log_rate > 0


def command(settings: Settings, entrypoint: list[str]) -> list[str]:
    """The entrypoint that runs the image's own (then the command) under the init."""
    return [PATH, str(int(settings.log_rate)), str(int(settings.log_burst)), "--", *entrypoint]


def binary(settings: Settings) -> Path:
    """The compiled init, built on first use (a second or two) and kept."""
    source = SOURCE.read_bytes()
    target = settings.data / "bin" / f"spaceport-init-{hashlib.sha256(source).hexdigest()[:16]}"
    if target.exists():
        return target
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise AppInitError(
            "no C compiler to build spaceport-init (the log rate cap every app runs under): "
            "install gcc and libc6-dev, or set SPACEPORT_LOG_RATE=0 to run apps uncapped"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
    done = subprocess.run(
        [compiler, "-static", "-O2", "-s", "-o", str(partial), str(SOURCE)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        partial.unlink(missing_ok=True)
        raise AppInitError(
            f"building spaceport-init failed ({done.stderr.strip()[-400:]}): install "
            "libc6-dev (a static C library), or set SPACEPORT_LOG_RATE=0 to run apps uncapped"
        )
    partial.replace(target)  # atomic: processes building it at once each get a whole file
    return target


def archive(settings: Settings) -> bytes:
    """A tar of `/.spaceport/init`, owned by root and read-only to the app, for put_archive."""
    return _archive(binary(settings))


@cache
def _archive(path: Path) -> bytes:
    data = path.read_bytes()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        folder = tarfile.TarInfo(DIRECTORY.lstrip("/"))
        folder.type, folder.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(folder)
        info = tarfile.TarInfo(PATH.lstrip("/"))
        info.size, info.mode = len(data), 0o755
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()
