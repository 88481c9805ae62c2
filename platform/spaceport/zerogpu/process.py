"""The broker as one of the node's processes: `spaceport up` starts it when the node has a
shared pool, and the reconciler starts it again if it died (apps' calls fail meanwhile with
"the node's GPU broker does not answer")."""

from __future__ import annotations

import fcntl
import sys
import time
from collections.abc import Callable

from spaceport.engine.gpus.shared import SOCKET_NAME
from spaceport.settings import Settings
from spaceport.supervisor import read_pid, start_process

NAME = "gpu-broker"


def _ready(settings: Settings) -> bool:
    return (settings.zero_gpu_dir / SOCKET_NAME).is_socket()


def ensure_gpu_broker(settings: Settings, say: Callable[[str], object]) -> None:
    """Start the broker unless one runs (`up` and the API's reconciler may both ask at once:
    a second broker would take the socket and the first would be left without a pidfile)."""
    if not settings.zero_gpu_pool:
        return
    settings.ensure_dirs()
    with open(settings.run_dir / f"{NAME}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one check-and-start at a time, across processes
        if read_pid(settings, NAME) is not None:
            deadline = time.monotonic() + 30
            while not _ready(settings) and time.monotonic() < deadline:
                time.sleep(0.1)
            return
        argv = [sys.executable, "-m", "spaceport.zerogpu.broker"]
        if start_process(settings, NAME, argv, lambda: _ready(settings), timeout_s=30):
            say(f"started the shared-GPU broker ({len(settings.zero_gpu_pool)} GPU(s) in its pool)")


def broker_running(settings: Settings) -> bool:
    return read_pid(settings, NAME) is not None
