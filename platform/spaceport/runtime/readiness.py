"""Readiness: a new container takes traffic only once its app answers HTTP."""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx

from spaceport.runtime.base import RuntimeBackend


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
) -> Readiness:
    """Poll the app until any HTTP answer below 500, the container exits, or time runs out."""
    deadline = time.monotonic() + timeout_s
    with httpx.Client(timeout=2.0) as client:
        while time.monotonic() < deadline:
            try:
                if client.get(f"http://{upstream}/").status_code < 500:
                    return Readiness(True)
            except httpx.HTTPError:
                pass
            state = backend.inspect(container_id)
            if state is None or not state.running:
                code = state.exit_code if state else None
                return Readiness(False, f"the app exited (code {code}) before answering HTTP")
            time.sleep(poll_s)
    return Readiness(False, f"the app did not answer HTTP within {timeout_s:.0f} s")
