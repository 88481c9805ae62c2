"""Who gets a pool GPU next: a fair queue of calls, in arrival order within a Space.

Pure bookkeeping (no I/O), so the order and fairness rules are one small thing to read and
test. Fairness between Spaces: the next call is the oldest call of the Space that was served
longest ago (never served first), so a busy Space cannot starve a quiet one by queueing many
calls; within a Space calls go in arrival order.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

_ids = itertools.count(1)


@dataclass
class Call:
    """One `@spaces.GPU` call: waiting, then holding `gpu` until released."""

    space: str
    duration_s: float
    arrived: float
    id: int = field(default_factory=lambda: next(_ids))
    gpu: str | None = None
    granted_at: float | None = None


class Scheduler:
    """Calls waiting for, and holding, the GPUs of one node's pool."""

    def __init__(self, gpus: list[str], calls_per_gpu: int = 1) -> None:
        self.gpus = list(gpus)
        self.calls_per_gpu = calls_per_gpu
        self.waiting: list[Call] = []
        self.holding: dict[str, list[Call]] = {g: [] for g in self.gpus}
        self.last_served: dict[str, float] = {}

    def submit(self, call: Call) -> None:
        self.waiting.append(call)

    def order(self) -> list[Call]:
        """The waiting calls in the order they would be granted (one Space's calls never
        overtake each other; a Space just served goes behind the others that wait)."""
        rank: dict[str, tuple[int, float]] = {s: (0, t) for s, t in self.last_served.items()}
        pending, out = list(self.waiting), []
        while pending:
            nxt = min(pending, key=lambda c: (rank.get(c.space, (-1, 0.0)), c.arrived, c.id))
            out.append(nxt)
            pending.remove(nxt)
            rank[nxt.space] = (1, float(len(out)))  # served (in this simulation) after all
        return out

    def position(self, call: Call) -> int:
        """How many waiting calls go before this one (0: it is next)."""
        order = self.order()
        return order.index(call) if call in order else 0

    def _free_gpu(self) -> str | None:
        free = [g for g in self.gpus if len(self.holding[g]) < self.calls_per_gpu]
        return min(free, key=lambda g: (len(self.holding[g]), self.gpus.index(g)), default=None)

    def grant(self, now: float) -> list[Call]:
        """Give free GPUs to the next calls; returns the calls granted now."""
        granted = []
        while self.waiting:
            gpu = self._free_gpu()
            if gpu is None:
                break
            call = self.order()[0]
            self.waiting.remove(call)
            call.gpu, call.granted_at = gpu, now
            self.holding[gpu].append(call)
            self.last_served[call.space] = now
            granted.append(call)
        return granted

    def release(self, call: Call, now: float) -> float:
        """The call gives its GPU back (or leaves the queue); returns the seconds it held it."""
        if call in self.waiting:
            self.waiting.remove(call)
            return 0.0
        if call.gpu is not None and call in self.holding.get(call.gpu, []):
            self.holding[call.gpu].remove(call)
            return max(0.0, now - (call.granted_at or now))
        return 0.0

    def holders(self) -> list[Call]:
        return [c for calls in self.holding.values() for c in calls]
