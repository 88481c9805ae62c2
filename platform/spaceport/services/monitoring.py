"""What `GET /api/v1/metrics` exports beyond the proxy's per-Space counters, and which alert
conditions hold now (the admin overview).

Rendered with prometheus-client: a `Collector` reads, at scrape time, the platform's events
(telemetry.snapshot: builds, deploys, restarts, sleeps, wakes, reconciler passes), the
database (build queue, Spaces per stage, each Space's consecutive crashes), each app
container's cgroup (CPU time, memory: engine/cgroup_stats.py) and this machine (CPU, memory,
disk, GPUs). Who sees what:
- series about one Space (a `space` label) only for the Spaces the caller may read, which are
  Spaces that exist: a deleted Space's counts stay in Redis but are never shown again, so the
  label's values are bounded by the Spaces there are;
- the platform's series (builds, queue, nodes, request latency) only for admins: they tell
  about every owner's work.

The alert thresholds live here once: deploy/prometheus/spaceport-rules.yml says the same in
PromQL (tests/test_metrics.py checks the two agree), and `alerts()` evaluates them now for the
admin view, from the same numbers a scrape would give.
"""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import redis
import structlog
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from spaceport import telemetry
from spaceport.db.models import Build, Space, utcnow
from spaceport.engine import make_backend
from spaceport.engine.cgroup_stats import Usage, space_usage
from spaceport.lifecycle import node_pool
from spaceport.services.hardware import node_gpus
from spaceport.settings import Settings
from spaceport.stages import BuildStatus
from spaceport.zerogpu import state as zerogpu_state

log = structlog.get_logger(__name__)

# Alert thresholds (deploy/prometheus/spaceport-rules.yml holds the same numbers).
QUEUE_STUCK_S = 600  # the oldest queued build has waited this long
MEMORY_HIGH_FRACTION = 0.9  # of the node's memory in use (MemAvailable's complement)
CRASH_LOOP_COUNT = 3  # consecutive failed starts of one Space
DISK_FULL_FRACTION = 0.9  # of the data directory's file system in use


@dataclass(frozen=True)
class NodeUse:
    """This machine's capacity and use, read from /proc and the data directory's disk."""

    name: str
    cpus: int
    load1: float
    cpu_busy_s: float
    cpu_idle_s: float
    memory_bytes: int
    memory_available_bytes: int
    disk_bytes: int
    disk_free_bytes: int
    gpus: int
    gpus_used: int

    @property
    def memory_used_fraction(self) -> float:
        return 1 - self.memory_available_bytes / self.memory_bytes if self.memory_bytes else 0.0

    @property
    def disk_used_fraction(self) -> float:
        return 1 - self.disk_free_bytes / self.disk_bytes if self.disk_bytes else 0.0


def _meminfo() -> dict[str, int]:
    out: dict[str, int] = {}
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                key, _, rest = line.partition(":")
                parts = rest.split()
                if parts:
                    out[key] = int(parts[0]) * 1024
    except OSError:
        pass
    return out


def _cpu_seconds() -> tuple[float, float]:
    """(busy, idle) CPU seconds since boot, all CPUs (the first line of /proc/stat)."""
    try:
        with open("/proc/stat") as fh:
            fields = [float(v) for v in fh.readline().split()[1:]]
    except (OSError, ValueError):
        return 0.0, 0.0
    tick = float(os.sysconf("SC_CLK_TCK"))
    idle = sum(fields[3:5])  # idle, iowait
    return (sum(fields) - idle) / tick, idle / tick


def node_use(settings: Settings) -> NodeUse:
    mem = _meminfo()
    disk = shutil.disk_usage(settings.data)
    busy, idle = _cpu_seconds()
    gpus = node_gpus(settings)
    return NodeUse(
        name=socket.gethostname(),
        cpus=os.cpu_count() or 1,
        load1=os.getloadavg()[0],
        cpu_busy_s=busy,
        cpu_idle_s=idle,
        memory_bytes=mem.get("MemTotal", 0),
        memory_available_bytes=mem.get("MemAvailable", 0),
        disk_bytes=disk.total,
        disk_free_bytes=disk.free,
        gpus=len(gpus),
        gpus_used=sum(1 for g in gpus if g["heldBy"] is not None),
    )


def container_usage(settings: Settings) -> dict[str, Usage]:
    """Each Space's container usage on this node; empty when the engine does not answer (the
    rest of a scrape still goes out)."""
    try:
        backend = make_backend(settings)
        return space_usage(backend, node_pool.owners(backend))
    except Exception as exc:  # the engine down or refusing: no numbers, not a failed scrape
        log.warning("monitoring.no_container_usage", error=repr(exc))
        return {}


@dataclass(frozen=True)
class QueueState:
    queued: int
    running: int
    oldest_wait_s: float  # 0 when nothing waits


def build_queue(session: Session) -> QueueState:
    counts = dict(
        session.execute(
            select(Build.status, func.count())
            .where(Build.status.in_([BuildStatus.QUEUED, BuildStatus.RUNNING]))
            .group_by(Build.status)
        ).all()
    )
    oldest = session.scalar(
        select(func.min(Build.created_at)).where(Build.status == BuildStatus.QUEUED)
    )
    wait = max(0.0, (utcnow() - oldest).total_seconds()) if oldest else 0.0
    return QueueState(
        int(counts.get(BuildStatus.QUEUED.value, 0)),
        int(counts.get(BuildStatus.RUNNING.value, 0)),
        wait,
    )


def _histogram(family: telemetry.Family, series: dict[tuple[str, ...], telemetry.Series]) -> Any:
    metric = HistogramMetricFamily(family.name, family.help, labels=list(family.labels))
    for values, s in sorted(series.items()):
        running, buckets = 0.0, []
        for bound, n in zip([*family.buckets, float("inf")], s.buckets, strict=True):
            running += n
            buckets.append(("+Inf" if bound == float("inf") else repr(bound), running))
        metric.add_metric(list(values), buckets, s.sum)
    return metric


class PlatformCollector(Collector):
    """The families above, for one scrape by one caller (`admin`: may see the platform's;
    `spaces`: the Space ids they may read, each with its consecutive crash count)."""

    def __init__(
        self, settings: Settings, session: Session, *, admin: bool, spaces: dict[str, int]
    ) -> None:
        self.settings, self.session, self.admin = settings, session, admin
        self.spaces = spaces

    def collect(self) -> Iterator[Any]:
        yield from self._space_series()
        if self.admin:
            yield from self._platform_series()

    def _space_series(self) -> Iterable[Any]:
        crashes = GaugeMetricFamily(
            "spaceport_space_consecutive_crashes",
            "Failures of the Space in a row (reset when it runs steadily or its owner restarts).",
            labels=["space"],
        )
        for space_id in sorted(self.spaces):
            crashes.add_metric([space_id], self.spaces[space_id])
        yield crashes
        yield from self._container_series()
        if self.settings.zero_gpu_pool:
            yield from self._shared_gpu_series()
        if not self.settings.metrics:
            return
        snap = telemetry.snapshot(self.settings)
        for name, family in telemetry.FAMILIES.items():
            if "space" not in family.labels:
                continue
            where = family.labels.index("space")
            metric = CounterMetricFamily(name, family.help, labels=list(family.labels))
            for values, n in sorted(snap.counters.get(name, {}).items()):
                if values[where] in self.spaces:
                    metric.add_metric(list(values), n)
            yield metric

    def _container_series(self) -> Iterable[Any]:
        """Each readable Space's containers' CPU time and memory, from their cgroups (one
        engine list per scrape, then a few file reads a container: engine/cgroup_stats.py)."""
        cpu = CounterMetricFamily(
            "spaceport_space_cpu_seconds",
            "CPU time of the Space's running container since it started (a restart resets it).",
            labels=["space"],
        )
        memory = GaugeMetricFamily(
            "spaceport_space_memory_bytes",
            "Memory of the Space's running container, less inactive page cache (docker stats).",
            labels=["space"],
        )
        for space_id, use in sorted(container_usage(self.settings).items()):
            if space_id in self.spaces:
                cpu.add_metric([space_id], use.cpu_seconds)
                memory.add_metric([space_id], use.memory_bytes)
        yield cpu
        yield memory

    def _shared_gpu_series(self) -> Iterable[Any]:
        """Shared GPUs (zerogpu): each readable Space's calls and GPU seconds; admins also get
        the leases held and the calls waiting now."""
        try:
            snap = zerogpu_state.snapshot(telemetry.redis_client(self.settings))
        except redis.RedisError:
            return
        seconds = CounterMetricFamily(
            "spaceport_space_gpu_seconds",
            "Seconds the Space held a shared GPU (zero-a10g), summed over its calls.",
            labels=["space"],
        )
        calls = CounterMetricFamily(
            "spaceport_space_gpu_calls", "Shared-GPU calls the Space made.", labels=["space"]
        )
        for row in snap["usage"]:
            if row["space"] in self.spaces:
                seconds.add_metric([row["space"]], row["gpuSeconds"])
                calls.add_metric([row["space"]], row["calls"])
        yield seconds
        yield calls
        if self.admin:
            yield GaugeMetricFamily(
                "spaceport_shared_gpu_leases",
                "Calls holding a shared GPU now.",
                value=len(snap["leases"]),
            )
            yield GaugeMetricFamily(
                "spaceport_shared_gpu_queue_length",
                "Calls waiting for a shared GPU now.",
                value=len(snap["queue"]),
            )

    def _platform_series(self) -> Iterable[Any]:
        queue = build_queue(self.session)
        depth = GaugeMetricFamily(
            "spaceport_build_queue_depth", "Builds waiting or building now.", labels=["status"]
        )
        depth.add_metric(["queued"], queue.queued)
        depth.add_metric(["running"], queue.running)
        yield depth
        yield GaugeMetricFamily(
            "spaceport_build_queue_oldest_wait_seconds",
            "How long the oldest queued build has waited (0: none waits).",
            value=queue.oldest_wait_s,
        )
        stages = GaugeMetricFamily("spaceport_spaces", "Spaces per stage.", labels=["stage"])
        for stage, count in sorted(self.session.execute(_STAGE_COUNTS).all()):
            stages.add_metric([stage], count)
        yield stages
        yield from _node_series(node_use(self.settings))
        if not self.settings.metrics:
            return
        snap = telemetry.snapshot(self.settings)
        for name, family in telemetry.FAMILIES.items():
            if "space" in family.labels:
                continue
            if family.kind == "histogram":
                yield _histogram(family, snap.histograms.get(name, {}))
                continue
            metric = CounterMetricFamily(name, family.help, labels=list(family.labels))
            for values, n in sorted(snap.counters.get(name, {}).items()):
                metric.add_metric(list(values), n)
            yield metric


_STAGE_COUNTS = select(Space.stage, func.count()).group_by(Space.stage)


def _node_series(use: NodeUse) -> Iterable[Any]:
    def gauge(name: str, help_text: str, value: float) -> GaugeMetricFamily:
        g = GaugeMetricFamily(name, help_text, labels=["node"])
        g.add_metric([use.name], value)
        return g

    yield gauge("spaceport_node_cpus", "CPUs of the node.", use.cpus)
    yield gauge("spaceport_node_load1", "The node's 1-minute load average.", use.load1)
    cpu = CounterMetricFamily(
        "spaceport_node_cpu_seconds", "CPU time since boot, all CPUs.", labels=["node", "mode"]
    )
    cpu.add_metric([use.name, "busy"], use.cpu_busy_s)
    cpu.add_metric([use.name, "idle"], use.cpu_idle_s)
    yield cpu
    yield gauge("spaceport_node_memory_bytes", "The node's memory.", use.memory_bytes)
    yield gauge(
        "spaceport_node_memory_available_bytes",
        "Memory the node can still give (MemAvailable).",
        use.memory_available_bytes,
    )
    yield gauge("spaceport_node_disk_bytes", "Size of the data directory's disk.", use.disk_bytes)
    yield gauge(
        "spaceport_node_disk_free_bytes",
        "Free bytes on the data directory's disk.",
        use.disk_free_bytes,
    )
    gpus = GaugeMetricFamily("spaceport_node_gpus", "The node's GPUs.", labels=["node", "state"])
    gpus.add_metric([use.name, "used"], use.gpus_used)
    gpus.add_metric([use.name, "free"], use.gpus - use.gpus_used)
    yield gpus


def alerts(session: Session, settings: Settings) -> list[dict[str, str]]:
    """The conditions of deploy/prometheus/spaceport-rules.yml that hold now, each with what
    an operator would read in the alert (the rules add a `for:` duration; this is the instant)."""
    out: list[dict[str, str]] = []
    queue = build_queue(session)
    if queue.oldest_wait_s > QUEUE_STUCK_S:
        out.append(
            {
                "alert": "SpaceportBuildQueueStuck",
                "severity": "warning",
                "summary": f"the oldest queued build has waited {queue.oldest_wait_s:.0f} s "
                f"({queue.queued} queued, {queue.running} building): is a worker running?",
            }
        )
    use = node_use(settings)
    if (used := use.memory_used_fraction) > MEMORY_HIGH_FRACTION:
        out.append(
            {
                "alert": "SpaceportNodeMemoryHigh",
                "severity": "warning",
                "summary": f"node {use.name}: {used:.0%} of its memory in use",
            }
        )
    if (used := use.disk_used_fraction) > DISK_FULL_FRACTION:
        out.append(
            {
                "alert": "SpaceportDiskNearlyFull",
                "severity": "critical",
                "summary": f"node {use.name}: the data directory's disk is {used:.0%} full",
            }
        )
    looping = session.scalars(
        select(Space).where(Space.crash_count >= CRASH_LOOP_COUNT).order_by(Space.id)
    )
    for space in looping:
        out.append(
            {
                "alert": "SpaceportSpaceCrashLooping",
                "severity": "warning",
                "space": space.space_id,
                "summary": f"{space.space_id} failed to start {space.crash_count} times in a row",
            }
        )
    return out
