"""Reconciler steps that run once every few passes, not every pass: work whose cost grows with
the node (listing every container or image, comparing the whole route table) and that can wait
a pass or two. Timed by the clock rather than by counting passes: a pass can take longer than
the interval, and any process may run a step."""

from __future__ import annotations

import time

from spaceport.settings import Settings


class EveryFewPasses:
    """`due()` is true once every `passes` reconcile intervals (`slack` below 1 lets a pass
    that starts a little early still run it)."""

    def __init__(self, passes: int, slack: float = 1.0) -> None:
        self.passes, self.slack = passes, slack
        self._last = float("-inf")

    def due(self, settings: Settings) -> bool:
        now = time.monotonic()
        if now - self._last < self.passes * settings.reconcile_interval_s * self.slack:
            return False
        self._last = now
        return True
