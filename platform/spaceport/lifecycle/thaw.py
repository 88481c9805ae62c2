"""Wake a frozen (light-sleeping) Space the instant a request reaches it, with no proxy change.

A frozen container keeps its route. Its processes cannot run, but its kernel still accepts
TCP connections and queues their bytes. This watcher reads the count of TCP segments the
container's network namespace received (`/proc/<pid>/net/snmp`, readable from the host even
while frozen) every `POLL_S`; when it moved, the container's socket table (`/proc/<pid>/net/tcp`)
says whether a visitor is there: a listening socket with a connection waiting, or a connection
with unread bytes. Then the container is thawed (docker unpause, ~50 ms). The visitor's
request is simply answered a little later; no status page, no proxy reload.

Why the counter first: reading a socket table walks the kernel's whole TCP hash (every
namespace's; 262,144 buckets here): 2-10 ms a read, against 15 us for the counters, and a
node with hundreds of frozen apps polls each 40 times a second (bench/bench_thousand.py).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import structlog
from sqlalchemy import select, update

from spaceport import telemetry
from spaceport.db.models import Deployment, Space, utcnow
from spaceport.db.session import session_scope
from spaceport.engine import make_backend
from spaceport.engine.base import RuntimeBackend, RuntimeBackendError
from spaceport.lifecycle.desired import Desired
from spaceport.settings import Settings
from spaceport.stages import DeploymentStatus, Stage

log = structlog.get_logger(__name__)

POLL_S = 0.025
REFRESH_S = 1.0
LISTEN, ESTABLISHED = "0A", "01"


def socket_table(pid: int) -> Path:
    return Path(f"/proc/{pid}/net/tcp")


def watchable(pid: int | None) -> bool:
    """Whether this process can see the container's sockets (it shares the host's /proc)."""
    return bool(pid) and socket_table(int(pid or 0)).exists()


def visitor_waiting(pid: int) -> bool:
    """A connection waits to be accepted, or an open one has unread bytes."""
    for name in ("tcp", "tcp6"):
        try:
            lines = Path(f"/proc/{pid}/net/{name}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) < 5 or fields[3] not in (LISTEN, ESTABLISHED):
                continue
            if int(fields[4].split(":")[1], 16) > 0:
                return True
    return False


def tcp_segments_in(pid: int) -> int | None:
    """TCP segments the container's network namespace received (IPv4 and IPv6: the kernel
    counts them together); None when it cannot be read."""
    try:
        text = Path(f"/proc/{pid}/net/snmp").read_text()
    except OSError:
        return None
    rows = [line.split() for line in text.splitlines() if line.startswith("Tcp:")]
    if len(rows) < 2 or "InSegs" not in rows[0]:
        return None
    return int(rows[1][rows[0].index("InSegs")])


def frozen_spaces() -> list[tuple[int, str]]:
    """(Space, container) of every light-sleeping Space: routed, stage SLEEPING."""
    with session_scope() as session:
        rows = session.execute(
            select(Space.id, Deployment.container_id)
            .join(Deployment, Deployment.space_id == Space.id)
            .where(
                Space.desired == Desired.RUNNING.value,
                Space.stage == Stage.SLEEPING.value,
                Deployment.status == DeploymentStatus.ACTIVE,
                Deployment.container_id.is_not(None),
            )
        ).all()
    return [(pk, str(cid)) for pk, cid in rows]


def thaw(backend: RuntimeBackend, space_pk: int, container_id: str) -> bool:
    """Unfreeze and mark RUNNING (only if still light-sleeping); True when it thawed.

    Counted as a wake of tier `frozen`, timed from the call (a visitor seen waiting) to the
    container running again."""
    started = time.monotonic()
    try:
        backend.unpause(container_id)
    except RuntimeBackendError as exc:
        log.warning("thaw.failed", space_pk=space_pk, error=str(exc))
        return False
    telemetry.count("spaceport_wakes", tier="frozen")
    telemetry.observe("spaceport_wake_duration_seconds", time.monotonic() - started, tier="frozen")
    with session_scope() as session:
        session.execute(
            update(Space)
            .where(
                Space.id == space_pk,
                Space.desired == Desired.RUNNING.value,
                Space.stage == Stage.SLEEPING.value,
            )
            .values(stage=Stage.RUNNING.value, last_request_at=utcnow())
        )
    log.info("thaw.woken", space_pk=space_pk)
    return True


class ThawWatcher:
    """A thread in the API process; cheap: one small /proc read per frozen Space per poll,
    and a socket table read only when segments arrived."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="thaw-watcher", daemon=True)
        self._pids: dict[str, int] = {}
        self._segments: dict[str, int] = {}  # by container: its count when last looked at
        self._again: set[str] = set()  # looked at once more: a segment is counted before queued

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _pid(self, backend: RuntimeBackend, container_id: str) -> int | None:
        if container_id not in self._pids:
            pid = backend.node_ops().pid(container_id)
            if not watchable(pid):
                return None
            self._pids[container_id] = int(pid or 0)
        return self._pids[container_id]

    def _arrived(self, container_id: str, pid: int) -> bool:
        """Whether segments reached the container since it was last looked at (or it is
        looked at for the first time: a visitor may have come before). After a change it
        says so once more at the next poll: the kernel counts a segment a moment before it
        queues it on its socket, and a socket table read in between sees nothing yet."""
        count = tcp_segments_in(pid)
        if count is None:
            return True  # the socket table decides
        last = self._segments.get(container_id)
        self._segments[container_id] = count
        if last is None or count != last:
            self._again.add(container_id)
            return True
        if container_id in self._again:
            self._again.discard(container_id)
            return True
        return False

    def _run(self) -> None:
        backend: RuntimeBackend | None = None
        frozen: list[tuple[int, str]] = []
        refreshed = 0.0
        while not self._stop.is_set():
            try:
                if backend is None:
                    backend = make_backend(self.settings)
                if time.monotonic() - refreshed > REFRESH_S:
                    frozen, refreshed = frozen_spaces(), time.monotonic()
                    live = {cid for _, cid in frozen}
                    self._pids = {c: p for c, p in self._pids.items() if c in live}
                    self._segments = {c: n for c, n in self._segments.items() if c in live}
                    self._again &= live
                for space_pk, container_id in frozen:
                    pid = self._pid(backend, container_id)
                    if not pid or not self._arrived(container_id, pid):
                        continue
                    if visitor_waiting(pid):
                        if thaw(backend, space_pk, container_id):
                            refreshed = 0.0
                        else:  # the engine refused: the visitor still waits, look again
                            self._segments.pop(container_id, None)
            except Exception as exc:  # the engine or database went away: try again soon
                log.warning("thaw.watch_failed", error=repr(exc))
                backend, refreshed = None, 0.0
                self._segments.clear()  # a visitor seen meanwhile is looked for again
                self._stop.wait(1.0)
            self._stop.wait(POLL_S)
