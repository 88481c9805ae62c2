"""The values of `Space.desired`: the state the runtime drives each Space towards.

`running`, `paused` and `stopped` are what the owner asked for; `sleeping` is the platform's own
choice for an idle Space (frozen or stopped) and the next visitor turns it back into `running`.
Only `running` Spaces get a route (see `proxy.sync.desired_routes`).
"""

from __future__ import annotations

from enum import StrEnum

from spaceport.stages import Stage


class Desired(StrEnum):
    RUNNING = "running"
    SLEEPING = "sleeping"
    PAUSED = "paused"
    STOPPED = "stopped"


def resting_stage(desired: str) -> Stage | None:
    """The stage a Space shows while the runtime holds it in `desired` (None for running)."""
    return {
        Desired.SLEEPING: Stage.SLEEPING,
        Desired.PAUSED: Stage.PAUSED,
        Desired.STOPPED: Stage.STOPPED,
    }.get(Desired(desired))
