"""Runtime: run Space images as containers and keep them where their owners asked.

The rest of the code asks `make_backend(settings)` for a backend and never imports an
implementation directly: `docker` (this machine's engine) or `swarm` (a Docker Swarm,
SPACEPORT_RUNTIME=swarm).
"""

from __future__ import annotations

from spaceport.engine.base import RuntimeBackend
from spaceport.settings import Settings


def make_backend(settings: Settings) -> RuntimeBackend:
    if settings.runtime == "swarm":
        from spaceport.engine.swarm_backend import SwarmBackend

        return SwarmBackend(settings)
    from spaceport.engine.docker_backend import DockerBackend

    return DockerBackend(settings)
