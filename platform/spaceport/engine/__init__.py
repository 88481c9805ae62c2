"""Runtime: run Space images as containers and keep them where their owners asked.

The rest of the code asks `make_backend(settings)` for a backend and never imports an
implementation directly (docker now; swarm later).
"""

from __future__ import annotations

from spaceport.engine.base import RuntimeBackend
from spaceport.settings import Settings


def make_backend(settings: Settings) -> RuntimeBackend:
    from spaceport.engine.docker_backend import DockerBackend

    return DockerBackend(settings)
