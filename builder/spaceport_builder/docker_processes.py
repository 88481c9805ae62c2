"""Running docker (and the other tools base images need) with their output streamed to a log,
and the two questions asked of the engine: is an image here, and does a registry answer.
"""

from __future__ import annotations

import json
import queue
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Sequence

from spaceport.settings import Settings
from spaceport_builder.errors import BaseImageError

Log = Callable[[str], None]
# A registry "answers" when `docker pull` prints its first progress line within this time.
PULL_PROBE_TIMEOUT_S = 20.0


def docker_cli(settings: Settings) -> str:
    """The docker CLI with built-in BuildKit: settings.docker_cli, else /usr/bin/docker."""
    candidates = [settings.docker_cli] if settings.docker_cli else ["/usr/bin/docker"]
    for cand in candidates:
        found = shutil.which(cand)
        if found:
            return found
    raise BaseImageError(
        f"docker CLI not found ({', '.join(c for c in candidates if c)}); install Debian's "
        "docker.io (its 20.10 CLI has BuildKit built in) or set SPACEPORT_DOCKER_CLI"
    )


def run_logged(
    cmd: Sequence[str],
    log: Log,
    *,
    what: str,
    env: dict[str, str] | None = None,
    timeout: float | None = None,
    hint: str = "",
) -> None:
    """Run `cmd`, streaming its output lines to `log`; raise BaseImageError on failure."""
    try:
        proc = subprocess.Popen(
            list(cmd),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            errors="replace",
            env=env,
        )
    except OSError as e:
        raise BaseImageError(f"{what}: cannot run {cmd[0]}: {e}. {hint}".strip()) from e
    timed_out = threading.Event()

    def _kill() -> None:
        timed_out.set()
        proc.kill()

    timer = threading.Timer(timeout, _kill) if timeout else None
    if timer:
        timer.start()
    tail: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip("\n")
            log(line)
            tail = [*tail[-19:], line]
        rc = proc.wait()
    finally:
        if timer:
            timer.cancel()
    if timed_out.is_set():
        raise BaseImageError(f"{what} timed out after {timeout:.0f}s. {hint}".strip())
    if rc != 0:
        last = "\n".join(tail[-8:])
        raise BaseImageError(f"{what} failed (exit {rc}). {hint}\n{last}".strip())


def image_labels(docker: str, ref: str) -> dict[str, str] | None:
    """Labels of a local image (empty dict if it has none), or None if it is not there."""
    res = subprocess.run(
        [docker, "image", "inspect", "--format", "{{json .Config.Labels}}", ref],
        capture_output=True,
        text=True,
    )
    if res.returncode != 0:
        if "no such image" in res.stderr.lower():
            return None
        raise BaseImageError(
            f"cannot query the Docker engine ({docker} image inspect): {res.stderr.strip()}; "
            "is dockerd running and is its socket accessible?"
        )
    labels = json.loads(res.stdout or "null")
    return dict(labels or {})


def image_exists(settings: Settings, ref: str) -> bool:
    """Whether `ref` is in the local engine's image store."""
    return image_labels(docker_cli(settings), ref) is not None


def probe_pull(docker: str, image: str, log: Log, timeout: float = PULL_PROBE_TIMEOUT_S) -> bool:
    """Pull `image`; False if the registry does not answer within `timeout` or the pull fails.

    Once the registry answers (first progress line) the pull may take as long as it needs.
    """
    log(f"$ {docker} pull {image}  (registry probe, {timeout:.0f}s)")
    try:
        proc = subprocess.Popen(
            [docker, "pull", image],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            errors="replace",
        )
    except OSError as e:
        log(f"cannot run docker pull: {e}")
        return False
    lines: queue.Queue[str | None] = queue.Queue()

    def _reader() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    threading.Thread(target=_reader, daemon=True).start()
    deadline = time.monotonic() + timeout
    answered = False
    while True:
        try:
            wait = None if answered else max(0.0, deadline - time.monotonic())
            line = lines.get(timeout=wait)
        except queue.Empty:
            proc.kill()
            proc.wait()
            log(f"no answer from the registry within {timeout:.0f}s")
            return False
        if line is None:
            break
        log(line)
        if re.search(r"Pulling from|Pulling fs layer|Digest:|Status:", line):
            answered = True
    return proc.wait() == 0
