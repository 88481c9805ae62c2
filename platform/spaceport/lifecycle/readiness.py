"""Readiness: a new container takes traffic only once its app answers HTTP."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from spaceport.engine.base import RuntimeBackend


@dataclass
class Readiness:
    ready: bool
    reason: str = ""


def wait_ready(
    backend: RuntimeBackend,
    container_id: str,
    upstream: str,
    timeout_s: float,
    poll_s: float = 0.1,
    on_poll: Callable[[], None] | None = None,
) -> Readiness:
    """Poll the app until any HTTP answer below 500, the container exits, or time runs out.

    `on_poll` runs every few polls (the caller renews its lock there).
    """
    deadline = time.monotonic() + timeout_s
    polls = 0
    with httpx.Client(timeout=2.0, trust_env=False) as client:
        while time.monotonic() < deadline:
            try:
                if client.get(f"http://{upstream}/").status_code < 500:
                    return Readiness(True)
            except httpx.HTTPError:
                pass
            state = backend.inspect(container_id)
            if state is None or not (state.running or state.paused):
                code = state.exit_code if state else None
                oom = " (out of memory)" if state and state.oom_killed else ""
                return Readiness(False, f"the app exited (code {code}){oom} before answering HTTP")
            polls += 1
            if on_poll is not None and polls % 20 == 0:
                on_poll()
            time.sleep(poll_s)
    return Readiness(
        False,
        f"the app did not answer HTTP within {timeout_s:.0f} s (startup_duration_timeout)",
    )
