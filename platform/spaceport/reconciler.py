"""The reconciler: make Docker and the proxy match the database, forever.

Runs as a thread in the API process. Each pass, every step on its own (one failing does not
stop the others):
- containers of running Spaces that died (crash, OOM, a dockerd restart) or wrote more than
  `app_writable_max` outside /data are reported and restarted with backoff; frozen
  containers of Spaces someone woke are thawed;
- idle Spaces are compressed (their app's untouched memory to zram: still RUNNING), then put
  to sleep (frozen, then stopped);
- Spaces that should run and run nothing (a crash retry is due, a GPU became free, the process
  that was starting them died) are started, from their existing image: never a new build;
- half-finished starts, stale GPU bookings, orphan containers and volumes are cleaned up;
- the proxy's route table is reloaded when it differs from the database (a proxy restarted);
- custom domains whose DNS reaches this node are verified, then routed;
- with HTTPS by nginx, missing certificates are ordered and due ones renewed (proxy/tls.py);
- once a `history_interval_s`, a point of each Space's and the node's graphs is recorded
  (services/history.py).
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
import traceback
from collections.abc import Callable
from functools import partial

import redis
import structlog

from spaceport import telemetry
from spaceport.db.session import session_scope
from spaceport.engine import make_backend
from spaceport.engine.base import RuntimeBackend
from spaceport.lifecycle import (
    compressor,
    crashes,
    janitor,
    jobs,
    node_pool,
    sleeper,
    standby,
    wake_standby,
)
from spaceport.lifecycle import gpu_allocator as allocator
from spaceport.lifecycle.pacing import EveryFewPasses
from spaceport.lifecycle.proxy_routes import (
    desired_routes,
    mark_routes_stale,
    routes_stale,
    sync_routes,
)
from spaceport.lifecycle.thaw import ThawWatcher
from spaceport.proxy import make_proxy, route_table
from spaceport.proxy.base import ProxyError
from spaceport.proxy.traffic import record_activity
from spaceport.settings import Settings

log = structlog.get_logger(__name__)


def start_due(settings: Settings) -> int:
    """Hand every Space whose (re)start is due to the background starters."""
    from spaceport.lifecycle.deployer import deploy

    started = 0
    for space_pk, since in crashes.restarts_due(settings):
        started += jobs.submit_once(
            settings, f"deploy:{space_pk}", partial(deploy, requested_at=since), settings, space_pk
        )
    return started


def routes_match(settings: Settings) -> bool:
    """The proxy serves the database's table, and it is the one published for other proxies."""
    with session_scope() as session:
        want = {r.space_id: r for r in desired_routes(session, settings)}
    have = asyncio.run(make_proxy(settings).get_all_routes())
    if want != have:  # upstreams, headers, privacy: any difference reloads
        return False
    client = redis.Redis.from_url(settings.redis_url)
    return route_table.published_digest(client) == route_table.encode(want.values())[0]


ROUTE_CHECK_PASSES = 3
"""The proxy's table is compared with the database's once every this many passes, and at the
next pass after a push failed or the proxy restarted (`routes_stale`): every change pushes the
table itself (`sync_routes`), so this check only repairs drift, and at a thousand Spaces it
was a quarter of a pass (docs/benchmarks.md)."""
_route_check = EveryFewPasses(ROUTE_CHECK_PASSES)


def sync_routes_if_needed(settings: Settings) -> None:
    """Push the table when marked stale (a no-op if nothing differs: it clears the mark), or
    when the periodic comparison finds the proxy's or the published table behind."""
    if routes_stale(settings) or (_route_check.due(settings) and not routes_match(settings)):
        sync_routes(settings)


SLOW_STEP_S = 30.0
"""A step running this long is logged with its stack (once per run of the step): a call that
hangs (an engine, a manager waiting on a dead node) must not hold every Space silently."""

_running: dict[int, tuple[str, float]] = {}
"""Thread id -> (step, started): what each reconciler thread is doing, for the watchdog."""


def _step(name: str, fn: Callable[[], object]) -> None:
    thread = threading.get_ident()
    started = time.monotonic()
    _running[thread] = (name, started)
    try:
        fn()
    except Exception as exc:
        log.warning("reconcile.step_failed", step=name, error=repr(exc))
    finally:
        _running.pop(thread, None)
        timings = getattr(_pass, "timings", None)
        if timings is not None:  # which step a slow pass spends its time in
            timings.append((time.monotonic() - started, {"step": name}))


def report_slow_steps(reported: set[tuple[int, float]], slow_s: float = SLOW_STEP_S) -> int:
    """Log each step that has run longer than `slow_s`, with where it waits; returns how many
    were newly reported (`reported` remembers them across calls)."""
    frames = sys._current_frames()
    count = 0
    for thread, (name, started) in list(_running.items()):
        took = time.monotonic() - started
        if took < slow_s or (thread, started) in reported or thread not in frames:
            continue
        reported.add((thread, started))
        stack = "".join(traceback.format_stack(frames[thread])[-8:])
        log.warning("reconcile.slow_step", step=name, running_s=round(took, 1), stack=stack)
        count += 1
    return count


def keep_resolver(settings: Settings) -> None:
    """Embedded mode (`up` started the resolver): start it again if it stopped answering, as
    every app route depends on it (proxy/resolver.py)."""
    from spaceport.proxy.resolver import answers_probe, ensure_resolver
    from spaceport.supervisor import pidfile

    if pidfile(settings, "resolver").exists() and not answers_probe(settings, timeout=0.5):
        ensure_resolver(settings, lambda msg: log.warning("reconcile.resolver", message=msg))


def keep_proxy(settings: Settings) -> None:
    """Embedded mode (`up` started the proxy): start it again if it died (its pidfile is left:
    a stop removes it), with the routes it serves (nginx: saved; Caddy: the next step)."""
    from spaceport.proxy import proxy_process

    proxy = proxy_process(settings)
    if proxy.pidfile.exists() and not proxy.is_running():
        log.warning("reconcile.proxy_restart", proxy=proxy.name)
        asyncio.run(proxy.start())
        mark_routes_stale(settings)


def keep_gpu_broker(settings: Settings) -> None:
    """A node with a shared GPU pool (zerogpu): start its broker again if it died."""
    from spaceport.zerogpu.process import broker_running, ensure_gpu_broker

    if settings.zero_gpu_pool and not broker_running(settings):
        ensure_gpu_broker(settings, lambda msg: log.warning("reconcile.gpu_broker", message=msg))


def verify_domains(settings: Settings) -> None:
    """Custom domains whose DNS now reaches this node are verified and routed
    (services/domains.py)."""
    from spaceport.services.domains import verify_pending

    verify_pending(settings)


def keep_certificates(settings: Settings) -> None:
    """HTTPS by nginx (proxy/tls.py): push the stored certificates now, and order missing or
    due ones in a thread of their own (an order waits on the CA for seconds to a minute; the
    other steps must not). Imported here only: the ACME library is not loaded where HTTPS is off.
    """
    if settings.https:
        from spaceport.proxy.tls import keep_certificates_in_background, push_certificates

        push_certificates(settings)
        keep_certificates_in_background(settings)


_pass = threading.local()  # the running pass's step durations (`reconcile_once`)


def reconcile_once(settings: Settings) -> None:
    """One pass; each step's duration is recorded at its end, in one round trip."""
    _pass.timings = []
    try:
        _reconcile_steps(settings)
    finally:
        timings, _pass.timings = _pass.timings, None
        telemetry.observe_many("spaceport_reconcile_step_duration_seconds", timings, settings)


def _reconcile_steps(settings: Settings) -> None:
    _step("resolver", lambda: keep_resolver(settings))
    _step("proxy", lambda: keep_proxy(settings))
    _step("gpu broker", lambda: keep_gpu_broker(settings))
    # First: fresh last_request_at from the proxy's counters before the sleep timer reads it.
    _step("traffic", _proxy_step(settings, lambda: record_activity(settings)))
    backend: RuntimeBackend | None = None
    try:
        backend = make_backend(settings)
    except Exception as exc:  # dockerd down: keep the routes right meanwhile
        log.warning("reconcile.no_engine", error=str(exc))
    if backend is not None:
        engine = backend
        _step("containers", lambda: crashes.check_containers(settings, engine))
        _step("disk", lambda: crashes.check_writable_layers(settings, engine))
        _step("sleep", lambda: sleeper.check_sleep(settings, engine))
        _step("compress", lambda: compressor.check_compress(settings))
        _step("stale_starts", lambda: janitor.fail_stale_starts(settings, engine))
        _step("holds", lambda: janitor.finish_holds(settings, engine))
        _step("start_due", lambda: start_due(settings))
        _step("gpus", allocator.release_stale)
        _step("orphans", lambda: janitor.remove_orphans(settings, engine))
        _step("standbys", lambda: standby.sweep(settings, engine))
        _step("wake standbys", lambda: wake_standby.refill(settings, engine))
        _step("node pool", lambda: node_pool.refill(settings, engine))
    _step("domains", lambda: verify_domains(settings))
    _step("routes", _proxy_step(settings, lambda: sync_routes_if_needed(settings)))
    _step("certificates", lambda: keep_certificates(settings))
    _step("lost_builds", lambda: _recover_builds(settings))
    _step("history", _proxy_step(settings, lambda: sample_history(settings)))


def _proxy_step(settings: Settings, fn: Callable[[], object]) -> Callable[[], object]:
    """A step that asks the proxy: when the proxy is found gone, it is started again at once.
    Each such call waits for the admin socket for a while (nginx: 10 s) before it gives up, so
    a pass that found it dead would otherwise take that long per step, and the pass's own
    check (`keep_proxy`, its first step) come only after all of them."""

    def run() -> object:
        try:
            return fn()
        except ProxyError:
            keep_proxy(settings)
            raise

    return run


def sample_history(settings: Settings) -> None:
    """A point of the console's graphs per slot (services/history.py): most passes find the
    slot taken already and return after one Redis call."""
    from spaceport.services.history import sample

    sample(settings)


def _recover_builds(settings: Settings) -> None:
    """Builds whose worker died mid-build are built again or failed, and builds whose queued
    task Redis lost are sent again (queue/recovery.py)."""
    from spaceport.queue.recovery import recover_stuck_builds, resend_lost_queued

    recover_stuck_builds(settings)
    resend_lost_queued(settings)


class Reconciler:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="reconciler", daemon=True)
        self._watchdog = threading.Thread(target=self._watch, name="reconcile-watch", daemon=True)
        self._thaw = ThawWatcher(settings)  # light-sleeping Spaces wake on their first request

    def start(self) -> None:
        self._thread.start()
        self._watchdog.start()
        self._thaw.start()

    def _watch(self) -> None:
        reported: set[tuple[int, float]] = set()
        while not self._stop.wait(SLOW_STEP_S / 3):
            report_slow_steps(reported)

    def stop(self) -> None:
        self._stop.set()
        self._thaw.stop()

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            reconcile_once(self.settings)
            telemetry.observe(
                "spaceport_reconcile_duration_seconds",
                time.monotonic() - started,
                settings=self.settings,
            )
            self._stop.wait(self.settings.reconcile_interval_s)
