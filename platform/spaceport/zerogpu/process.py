"""The broker as one of the node's processes: `spaceport up` starts it when the node has a
shared pool, and the reconciler starts it again if it died (apps' calls fail meanwhile with
"the node's GPU broker does not answer")."""

from __future__ import annotations

import sys
from collections.abc import Callable

from spaceport.engine.gpus.shared import SOCKET_NAME
from spaceport.settings import Settings
from spaceport.supervisor import read_pid, start_process

NAME = "gpu-broker"


def _ready(settings: Settings) -> bool:
    return (settings.zero_gpu_dir / SOCKET_NAME).is_socket()


def ensure_gpu_broker(settings: Settings, say: Callable[[str], object]) -> None:
    if not settings.zero_gpu_pool:
        return
    argv = [sys.executable, "-m", "spaceport.zerogpu.broker"]
    if start_process(settings, NAME, argv, lambda: _ready(settings), timeout_s=30):
        say(f"started the shared-GPU broker ({len(settings.zero_gpu_pool)} GPU(s) in its pool)")


def broker_running(settings: Settings) -> bool:
    return read_pid(settings, NAME) is not None
