"""Prometheus metrics and alerts, against real parts: Debian's Prometheus server scrapes the test
node's `/api/v1/metrics` with the admin token and PromQL returns the build and wake metrics;
`promtool` accepts the shipped rules; a stranger cannot read a private Space's series; 1,000
requests to random hosts leave the number of series as it was."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import yaml

from tests.conftest import PUBLIC_PORT, ROOT, Node, need, unique
from tests.runtime.helpers import echo_space, hf, settled, wait_for

RULES = ROOT / "deploy" / "prometheus" / "spaceport-rules.yml"
SERIES = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?\s", re.M)


def series(text: str) -> set[str]:
    """Every series (name and labels) of a text exposition."""
    return {m.group(1) + (m.group(2) or "") for m in SERIES.finditer(text)}


def test_rules_pass_promtool_and_say_what_the_admin_view_says() -> None:
    need(shutil.which("promtool") is not None, "promtool (Debian's prometheus package)")
    check = subprocess.run(
        ["promtool", "check", "rules", str(RULES)], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert "SUCCESS: 4 rules found" in check.stdout

    from spaceport.services import monitoring

    exprs = {r["alert"]: r["expr"] for r in yaml.safe_load(RULES.read_text())["groups"][0]["rules"]}
    assert exprs == {
        "SpaceportBuildQueueStuck": (
            f"spaceport_build_queue_oldest_wait_seconds > {monitoring.QUEUE_STUCK_S}"
        ),
        "SpaceportNodeMemoryHigh": "1 - spaceport_node_memory_available_bytes / "
        f"spaceport_node_memory_bytes > {monitoring.MEMORY_HIGH_FRACTION}",
        "SpaceportSpaceCrashLooping": (
            f"spaceport_space_consecutive_crashes >= {monitoring.CRASH_LOOP_COUNT}"
        ),
        "SpaceportDiskNearlyFull": "1 - spaceport_node_disk_free_bytes / "
        f"spaceport_node_disk_bytes > {monitoring.DISK_FULL_FRACTION}",
    }


def test_events_from_any_process_render_as_prometheus_histograms(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """telemetry's Redis hash read back and rendered as services/monitoring renders it: each
    bucket counts what is <= its bound (cumulative), +Inf all; labels must be the declared."""
    from tests.conftest import REDIS_DB, redis_available

    need(redis_available(), "redis-server on 127.0.0.1:6379")
    import redis
    from prometheus_client import generate_latest
    from prometheus_client.registry import CollectorRegistry

    from spaceport import telemetry
    from spaceport.services.monitoring import _histogram
    from spaceport.settings import Settings

    key = f"spaceport:metrics:test:{uuid.uuid4().hex}"
    monkeypatch.setattr(telemetry, "KEY", key)
    settings = Settings(redis_url=f"redis://127.0.0.1:6379/{REDIS_DB}")
    try:
        for seconds in (0.01, 0.3, 0.3, 200.0):  # on a bound, between two, past the last
            telemetry.observe("spaceport_wake_duration_seconds", seconds, settings, tier="frozen")
        telemetry.observe("spaceport_wake_duration_seconds", 1.0, settings, space="x")  # refused
        snap = telemetry.snapshot(settings)
        family = telemetry.FAMILIES["spaceport_wake_duration_seconds"]

        class One:
            def collect(self) -> list[object]:
                return [_histogram(family, snap.histograms[family.name])]

        registry = CollectorRegistry(auto_describe=False)
        registry.register(One())  # type: ignore[arg-type]  # a Collector by shape
        text = generate_latest(registry).decode()
    finally:
        redis.Redis.from_url(settings.redis_url).delete(key)
    wake = 'spaceport_wake_duration_seconds_bucket{le="%s",tier="frozen"} %s'
    assert wake % ("0.01", "1.0") in text
    assert wake % ("0.25", "1.0") in text
    assert wake % ("0.5", "3.0") in text
    assert wake % ("120.0", "3.0") in text
    assert wake % ("+Inf", "4.0") in text
    assert 'spaceport_wake_duration_seconds_count{tier="frozen"} 4.0' in text
    assert 'spaceport_wake_duration_seconds_sum{tier="frozen"} 200.61' in text
    assert "space=" not in text


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def prometheus(node: Node, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Prometheus server scraping the node every second with the admin token."""
    need(shutil.which("prometheus") is not None, "prometheus (Debian's prometheus package)")
    work = tmp_path_factory.mktemp("prometheus")
    (work / "token").write_text(node.token)
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(RULES)],
        "scrape_configs": [
            {
                "job_name": "spaceport",
                "metrics_path": "/api/v1/metrics",
                "authorization": {"type": "Bearer", "credentials_file": str(work / "token")},
                "static_configs": [{"targets": [f"127.0.0.1:{PUBLIC_PORT}"]}],
            }
        ],
    }
    (work / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with (work / "prometheus.log").open("w") as log:
        proc = subprocess.Popen(
            [
                "prometheus",
                f"--config.file={work / 'prometheus.yml'}",
                f"--storage.tsdb.path={work / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:

        def up() -> bool:
            try:
                r = httpx.get(f"{url}/api/v1/query", params={"query": 'up{job="spaceport"}'})
                result = r.json()["data"]["result"]
                return bool(result) and result[0]["value"][1] == "1"
            except (httpx.HTTPError, ValueError, KeyError):
                return False

        wait_for(up, 60, every=0.5)  # its first scrape of the node succeeded
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def query(url: str, promql: str) -> dict[str, float]:
    """A PromQL instant query through Prometheus' HTTP API: each series' labels -> value."""
    r = httpx.get(f"{url}/api/v1/query", params={"query": promql}, timeout=10)
    body = r.json()
    assert body["status"] == "success", body
    return {
        ",".join(f"{k}={v}" for k, v in sorted(s["metric"].items()) if k != "__name__"): float(
            s["value"][1]
        )
        for s in body["data"]["result"]
    }


def eventually(url: str, promql: str, timeout: float = 30) -> float:
    """The value of a one-series query once it has one (each scrape is a second apart)."""
    found = wait_for(lambda: query(url, promql), timeout, every=0.5)
    assert len(found) == 1, found
    return next(iter(found.values()))


RUNTIME_ROUTE = "/api/spaces/{owner}/{name}/runtime"


@pytest.mark.slow
def test_prometheus_reads_build_and_wake_metrics(node: Node, prometheus: str) -> None:
    space_id = echo_space(node, "metrics")  # a push, a build, a deploy
    try:
        assert eventually(prometheus, 'spaceport_builds_total{result="succeeded"}') >= 1
        succeeded = 'spaceport_build_duration_seconds_count{result="succeeded"}'
        assert eventually(prometheus, succeeded) >= 1
        assert eventually(prometheus, 'spaceport_deploys_total{result="served"}') >= 1
        assert eventually(prometheus, 'spaceport_build_queue_depth{status="queued"}') >= 0
        assert eventually(prometheus, "spaceport_node_memory_bytes") > 0
        # Where the reconciler's passes spend their time, step by step.
        step = 'spaceport_reconcile_step_duration_seconds_count{step="sleep"}'
        assert eventually(prometheus, step) >= 1
        assert eventually(prometheus, "spaceport_reconcile_duration_seconds_count") >= 1
        latency = f'spaceport_http_request_duration_seconds_count{{route="{RUNTIME_ROUTE}"}}'
        assert eventually(prometheus, f"sum({latency})") >= 1  # wait_stage polled it

        # Frozen (light sleep), then a visitor: thawed.
        settled(node, space_id)
        with node.api() as api:
            api.post(f"/api/v1/spaces/{space_id}/sleep").raise_for_status()
        node.wait_stage(space_id, {"SLEEPING"}, timeout=30)
        wait_for(lambda: node.app_get(space_id).status_code == 200, 30, every=0.2)
        assert eventually(prometheus, 'spaceport_wake_duration_seconds_count{tier="frozen"}') >= 1
        assert eventually(prometheus, 'spaceport_sleeps_total{tier="frozen"}') >= 1

        # Stopped (deep sleep), then woken: a new start.
        settled(node, space_id)
        with node.api() as api:
            api.post(f"/api/v1/spaces/{space_id}/sleep", params={"deep": True}).raise_for_status()
        node.wait_stage(space_id, {"SLEEPING"}, timeout=30)
        with node.api() as api:
            api.post(f"/api/v1/spaces/{space_id}/wake").raise_for_status()
        node.wait_stage(space_id, {"RUNNING"}, timeout=60)
        inf = 'spaceport_wake_duration_seconds_bucket{tier="stopped",le="+Inf"}'
        assert eventually(prometheus, inf) >= 1
        assert eventually(prometheus, 'spaceport_sleeps_total{tier="stopped"}') >= 1
    finally:
        hf(node).delete_repo(space_id, repo_type="space", missing_ok=True)


def test_a_stranger_cannot_read_a_private_spaces_metrics(node: Node) -> None:
    from spaceport.db.session import session_scope
    from spaceport.services.users import create_user

    with session_scope() as session:
        _, stranger = create_user(session, unique("mallory"))
    secret = node.create_space(unique("hush"), sdk="static", private=True)
    shown = f'space="{secret}"'
    try:
        with node.api() as admin:
            text = admin.get("/api/v1/metrics").text
        assert f"spaceport_space_consecutive_crashes{{{shown}}} 0.0" in text
        assert f"spaceport_space_requests_total{{{shown}}} 0" in text
        assert "spaceport_builds_total" in text or "spaceport_node_cpus" in text
        for token in (stranger, None):
            with node.api(token) as other:
                r = other.get("/api/v1/metrics")
            assert r.status_code == 200
            assert secret not in r.text
            assert "spaceport_node_cpus" not in r.text  # the platform's numbers: admins only
    finally:
        hf(node).delete_repo(secret, repo_type="space", missing_ok=True)


def test_cardinality_stays_bounded_under_random_hosts(node: Node) -> None:
    with node.api() as admin:
        admin.get("/api/v1/metrics").raise_for_status()  # its own route's series exist
        before = series(admin.get("/api/v1/metrics").text)
    names = [f"rnd{uuid.uuid4().hex[:10]}" for _ in range(1000)]

    def visit(name: str) -> int:
        host = f"{name}-{name}.localhost:{PUBLIC_PORT}"
        with httpx.Client(timeout=30) as c:
            return c.get(
                f"http://127.0.0.1:{PUBLIC_PORT}/{name}", headers={"Host": host}
            ).status_code

    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(visit, names))
    assert all(code == 404 for code in codes), sorted(set(codes))
    with node.api() as admin:
        after = series(admin.get("/api/v1/metrics").text)
    new = after - before
    assert not [s for s in after if "rnd" in s]  # no host, path or Space of theirs
    # At most the status pages' one route ("other", 4xx) as new series: its buckets, sum, count.
    assert len(new) <= 20, sorted(new)
    assert all('route="other"' in s or "spaceport_space_" in s for s in new), sorted(new)


def crash_looping(space_id: str, count: int) -> None:
    """What `count` failed starts in a row leave in the database (lifecycle/crashes.py)."""
    from sqlalchemy import update

    from spaceport.db.models import Space
    from spaceport.db.session import session_scope

    owner, name = space_id.split("/")
    with session_scope() as session:
        session.execute(
            update(Space).where(Space.owner == owner, Space.name == name).values(crash_count=count)
        )


@pytest.mark.slow
def test_a_crash_loop_is_an_alert_in_prometheus_and_the_admin_view(
    node: Node, prometheus: str
) -> None:
    space_id = node.create_space(unique("loopy"), sdk="static")
    try:
        crash_looping(space_id, 3)
        with node.api() as admin:
            alerts = admin.get("/api/v1/admin/overview").json()["alerts"]
        [alert] = [a for a in alerts if a.get("space") == space_id]
        assert alert["alert"] == "SpaceportSpaceCrashLooping"
        assert "3 times in a row" in alert["summary"]

        # The shipped rule, evaluated by Prometheus on what it scraped: pending (its `for:`).
        def held() -> list[dict[str, str]]:
            r = httpx.get(f"{prometheus}/api/v1/alerts", timeout=10).json()
            return [a for a in r["data"]["alerts"] if a["labels"].get("space") == space_id]

        [rule] = wait_for(held, 30, every=0.5)
        assert rule["labels"]["alertname"] == "SpaceportSpaceCrashLooping"
        assert rule["state"] in {"pending", "firing"}
    finally:
        hf(node).delete_repo(space_id, repo_type="space", missing_ok=True)
    with node.api() as admin:
        alerts = admin.get("/api/v1/admin/overview").json()["alerts"]
    assert not [a for a in alerts if a.get("space") == space_id]  # gone with the Space


def test_a_running_spaces_cpu_and_memory_from_its_cgroup_only_for_who_may_see_it(
    node: Node,
) -> None:
    """The container's cgroup numbers in /api/v1/metrics and its history, for its owner; a
    stranger gets neither (the history is a 404, as the private Space itself)."""
    from spaceport.db.session import session_scope
    from spaceport.services.users import create_user

    with session_scope() as session:
        _, stranger = create_user(session, unique("mallory"))
    space_id = echo_space(node, "cgroup", private=True)
    try:
        settled(node, space_id)
        with node.api() as admin:
            text = admin.get("/api/v1/metrics").text
        cpu = re.search(
            rf'^spaceport_space_cpu_seconds_total{{space="{space_id}"}} (\S+)$', text, re.M
        )
        memory = re.search(
            rf'^spaceport_space_memory_bytes{{space="{space_id}"}} (\S+)$', text, re.M
        )
        assert cpu and float(cpu.group(1)) > 0, text
        assert memory and float(memory.group(1)) > 1024**2  # a Python app: megabytes at least
        for token in (stranger, None):
            with node.api(token) as other:
                assert space_id not in other.get("/api/v1/metrics").text
                r = other.get(f"/api/v1/spaces/{space_id}/metrics/history")
                assert r.status_code == 404, r.text

        # The sampler (a reconciler step, every 2 s here) has recorded the app's memory.
        def sampled() -> list[dict[str, object]]:
            with node.api() as admin:
                r = admin.get(f"/api/v1/spaces/{space_id}/metrics/history", params={"range": "1h"})
            r.raise_for_status()
            return [p for p in r.json()["points"] if p["memoryBytes"]]

        assert wait_for(sampled, 30, every=1)
    finally:
        hf(node).delete_repo(space_id, repo_type="space", missing_ok=True)
