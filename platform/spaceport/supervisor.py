"""Start and stop the node's processes for `spaceport up/down` (the embedded, one-machine mode).

Each process is detached into its own session with a pidfile in `{data}/run` and a log in
`{data}/logs`, so `up` is idempotent (a live pidfile means running) and `down` stops exactly
what `up` started.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from spaceport.settings import Settings


class StartError(RuntimeError):
    pass


def pidfile(settings: Settings, name: str) -> Path:
    return settings.run_dir / f"{name}.pid"


def read_pid(settings: Settings, name: str) -> int | None:
    path = pidfile(settings, name)
    try:
        pid = int(path.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        path.unlink(missing_ok=True)
        return None
    except PermissionError:
        pass
    if _zombie(pid):  # dead, not yet reaped by the process that started it
        path.unlink(missing_ok=True)
        return None
    return pid


def _zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[:1] == ["Z"]


def start_process(
    settings: Settings,
    name: str,
    argv: Sequence[str],
    ready: Callable[[], bool],
    *,
    timeout_s: float = 60,
    env: dict[str, str] | None = None,
) -> bool:
    """Start `argv` unless it already runs; wait until `ready()`. Returns True if started."""
    if read_pid(settings, name) is not None and ready():
        return False
    settings.ensure_dirs()
    log_path = settings.logs_dir / f"{name}.log"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            list(argv),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env={**os.environ, **(env or {})},
        )
    pidfile(settings, name).write_text(str(proc.pid))
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise StartError(
                f"{name} exited with {proc.returncode}; see {log_path}:\n" + tail(log_path)
            )
        if ready():
            return True
        time.sleep(0.2)
    raise StartError(f"{name} did not become ready in {timeout_s:.0f} s; see {log_path}")


def stop_process(settings: Settings, name: str, timeout_s: float = 15) -> bool:
    pid = read_pid(settings, name)
    if pid is None:
        return False
    try:
        os.killpg(pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not _alive(pid):
            break
        time.sleep(0.2)
    else:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
    pidfile(settings, name).unlink(missing_ok=True)
    return True


def _alive(pid: int) -> bool:
    """Whether `pid` still runs. A child of this process that exited stays a zombie (which
    signal 0 still reaches) until reaped: reaped here, or every stop of a process this one
    started (`spaceport up` then `down` in one process, the tests) waited its whole timeout."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with contextlib.suppress(ChildProcessError):  # not our child: its parent reaps it
        return os.waitpid(pid, os.WNOHANG)[0] != pid
    return True


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return ""


def venv_bin(name: str) -> str:
    """A console script of this installation (uvicorn, celery), else one on PATH."""
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else (shutil.which(name) or name)
