"""Build speed, measured in one run beside the same work done with plain pip and no cache.

    .venv/bin/python bench/bench_build.py [--port 18190] [--redis-db 9] [--skip-platform]
    .venv/bin/python bench/bench_build.py --library-first   # an app importing a library first
    .venv/bin/python bench/bench_build.py --first-push      # a new Space: node pool vs none

Part 1 drives the builder directly (the Dockerfile it renders for examples/gradio-hello):
dependency install, first build (base image present, empty wheel cache), code-only rebuild.
Part 2 starts two real nodes (API, worker, Caddy) one after the other: the default one (uv,
BuildKit cache mounts, compiled dependency stage), and one configured as the baseline
(`SPACEPORT_BUILD_INSTALLER=pip`, `SPACEPORT_BUILD_CACHE=false`); each gets a first push of
the Gradio app (timed to RUNNING), a code-only push once the standby container is ready (timed
until the app answers with the new code), a second code-only push right after (no standby yet:
a fresh container), and a new Space with requirements of its own (timed to RUNNING). Each run
uses a new wheel-cache id, so "empty cache" is really empty.

Results go to docs/benchmarks.md ("Builds") by hand; the tests never assert on time.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from spaceport.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "gradio-hello"


@dataclass
class Row:
    what: str
    ours: float
    baseline: float
    target: str

    def line(self) -> str:
        ratio = self.baseline / self.ours if self.ours else float("inf")
        return (
            f"| {self.what} | {self.ours:.1f} s | {self.baseline:.1f} s | {ratio:.1f}x "
            f"| {self.target} |"
        )


def say(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def app_copy(greeting: str = "Hello", requirements: str | None = None, before: str = "") -> Path:
    """The Gradio example answering `greeting`, with `before` as the first lines of its app."""
    src = Path(tempfile.mkdtemp(prefix="spaceport-bench-app-"))
    shutil.copytree(EXAMPLE, src, dirs_exist_ok=True)
    if requirements is not None:
        (src / "requirements.txt").write_text(requirements)
    app = src / "app.py"
    code = app.read_text().replace('GREETING = "Hello"', f'GREETING = "{greeting}"')
    app.write_text(before + code)
    return src


# ------------------------------------------------------------------------------------------
# Part 1: the builder on its own


def builder_rows(cache_id: str) -> list[Row]:
    from spaceport.front_matter import load_config
    from spaceport.settings import get_settings
    from spaceport_builder.base_images import ensure_base_image
    from spaceport_builder.image_build import BuildRequest, index_build_args, run_build
    from spaceport_builder.packs import BuildContext, pack_for
    from spaceport_builder.packs.base import DEPS_ARG, DEPS_STAGE, SDK_ARG, SDK_STAGE

    settings = get_settings()
    base = ensure_base_image(settings, None, False, log=lambda _: None)
    repo = app_copy()
    tags: list[str] = []

    def build(installer: str, cache: bool, *, target: str | None, no_cache: bool) -> float:
        ctx = BuildContext(repo, load_config(repo), base, installer, cache, cache_id)
        dockerfile = repo.parent / f"{repo.name}-{installer}.Dockerfile"
        dockerfile.write_text(pack_for(ctx).render())
        tag = f"spaceport-bench/{installer}:{uuid.uuid4().hex[:8]}"
        tags.append(tag)
        args = {
            **index_build_args(settings, replace_extra=True),
            DEPS_ARG: DEPS_STAGE,
            SDK_ARG: SDK_STAGE,
        }
        req = BuildRequest(repo, dockerfile, tag, no_cache, args, target=target)
        started = time.monotonic()
        run_build(settings, req, lambda _: None)
        return time.monotonic() - started

    try:
        say("pip, no cache: dependency install (deps stage only)")
        pip_deps = build("pip", False, target=DEPS_STAGE, no_cache=True)
        say("uv, empty wheel cache: first build (whole image)")
        uv_first = build("uv", True, target=None, no_cache=True)
        say("uv, warm wheel cache: dependency install (deps stage only, no layer cache)")
        uv_deps = build("uv", True, target=DEPS_STAGE, no_cache=True)
        say("pip, no cache: first build (whole image)")
        pip_first = build("pip", False, target=None, no_cache=True)
        (repo / "app.py").write_text((repo / "app.py").read_text() + "\n# a code change\n")
        say("uv + layer cache: code-only rebuild")
        uv_code = build("uv", True, target=None, no_cache=False)
        say("pip, no cache: code-only rebuild (everything again)")
        pip_code = build("pip", False, target=None, no_cache=True)
    finally:
        subprocess.run(["docker", "rmi", "-f", *tags], capture_output=True)
        shutil.rmtree(repo, ignore_errors=True)
    return [
        Row("dependency install (gradio)", uv_deps, pip_deps, ">= 5x faster"),
        Row("first build, empty wheel cache", uv_first, pip_first, "< 10 s"),
        Row("code-only rebuild", uv_code, pip_code, "< 2 s"),
    ]


# ------------------------------------------------------------------------------------------
# Part 2: whole nodes, pushed to with git


@dataclass
class BenchNode:
    url: str
    token: str
    port: int
    settings: Settings

    def api(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {self.token}"}, timeout=30
        )


@contextmanager
def node(port: int, redis_db: int, extra_env: dict[str, str]) -> Iterator[BenchNode]:
    """A whole node in a temp data dir (as tests/conftest.py starts one), stopped after."""
    import docker
    import redis

    from spaceport import node as node_mod
    from spaceport.db import session as db_session
    from spaceport.queue import celery_app
    from spaceport.settings import get_settings

    data = Path(tempfile.mkdtemp(prefix="spaceport-bench-node-"))
    token = "sp_bench_" + uuid.uuid4().hex
    env = {
        "SPACEPORT_DATA": str(data),
        "SPACEPORT_URL": f"http://localhost:{port}",
        "SPACEPORT_LISTEN": f":{port}",
        "SPACEPORT_API_PORT": str(port + 1),
        "SPACEPORT_REDIS_URL": f"redis://127.0.0.1:6379/{redis_db}",
        "SPACEPORT_ADMIN_TOKEN": token,
        **extra_env,
    }
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    get_settings.cache_clear()
    db_session.get_engine.cache_clear()
    db_session._factory.cache_clear()
    celery_app.cache_clear()
    settings = get_settings()
    redis.Redis.from_url(settings.redis_url).flushdb()
    node_mod.up(settings, lambda m: say(f"node: {m}"), examples=None)
    try:
        yield BenchNode(f"http://127.0.0.1:{port}", token, port, settings)
    finally:
        node_mod.down(settings, lambda m: say(f"node: {m}"))
        client = docker.from_env()
        label = f"org.spaceport.instance={settings.instance}"
        for container in client.containers.list(all=True, filters={"label": label}):
            container.remove(force=True)
        images = client.images.list(filters={"label": "org.spaceport.space"})
        for image in images:
            if any(t.startswith("spaceport/space-") and "-admin-bench-" in t for t in image.tags):
                subprocess.run(["docker", "rmi", "-f", image.id], capture_output=True)
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        shutil.rmtree(data, ignore_errors=True)


def push(bench: BenchNode, src: Path, space_id: str) -> None:
    from spaceport.examples import push_dir

    push_dir(bench.settings, src, space_id, bench.token)


def wait(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise SystemExit(f"timed out waiting for {what}")


def greets(bench: BenchNode, space_id: str, greeting: str) -> bool:
    """The app, through Caddy, answers with this greeting (what a user would see)."""
    owner, name = space_id.split("/")
    return greets_at(bench.port, f"{bench.settings.app_host(owner, name)}:{bench.port}", greeting)


def greets_at(port: int, host_name: str, greeting: str) -> bool:
    """The Gradio app at `host_name`, through the proxy on `port`, answers `greet("World")`
    with this greeting."""
    host = {"Host": host_name}
    base = f"http://127.0.0.1:{port}/gradio_api/call/greet"
    try:
        r = httpx.post(base, json={"data": ["World"]}, headers=host, timeout=5)
        if r.status_code != 200:
            return False
        event = r.json()["event_id"]
        body = httpx.get(f"{base}/{event}", headers=host, timeout=10).text
    except (httpx.HTTPError, ValueError, KeyError):
        return False
    return f'"{greeting}, World!"' in body


def stage(bench: BenchNode, space_id: str) -> str:
    with bench.api() as api:
        return str(api.get(f"/api/spaces/{space_id}/runtime").json().get("stage"))


def push_timings(
    bench: BenchNode, warm: bool, requirements: str | None = None, before: str = ""
) -> tuple[float, float, float]:
    """(first push to RUNNING, code-only push to the new version answering, a second
    code-only push right after it) in seconds. With `warm`, the first code-only push waits
    for the compiled dependencies and the standby container; the second comes before the
    next standby is ready, so it starts a fresh container."""
    name = f"bench-{uuid.uuid4().hex[:6]}"
    with bench.api() as api:
        r = api.post("/api/repos/create", json={"type": "space", "name": name, "sdk": "gradio"})
        r.raise_for_status()
    space_id = f"admin/{name}"
    started = time.monotonic()
    push(bench, app_copy("Hello", requirements, before), space_id)
    wait(lambda: stage(bench, space_id) == "RUNNING", 600, "RUNNING")
    first = time.monotonic() - started
    wait(lambda: greets(bench, space_id, "Hello"), 60, "the first version")
    if warm:
        say("waiting for the compiled dependency stage (warmed after the first deploy)")
        wait(lambda: compiled_ready(bench, space_id), 300, "the warm build")
        say("waiting for the standby container (prepared 20 s after a deploy)")
        wait(lambda: standby_ready(space_id), 300, "the standby")
    started = time.monotonic()
    push(bench, app_copy("Howdy", requirements, before), space_id)
    wait(lambda: greets(bench, space_id, "Howdy"), 600, "the new version")
    code = time.monotonic() - started
    started = time.monotonic()
    push(bench, app_copy("Hiya", requirements, before), space_id)
    wait(lambda: greets(bench, space_id, "Hiya"), 600, "the third version")
    return first, code, time.monotonic() - started


def standby_ready(space_id: str) -> bool:
    """The Space has a standby whose interpreter finished importing the SDK."""
    import docker
    from sqlalchemy import select

    from spaceport.db.models import Deployment, Space
    from spaceport.db.session import session_scope

    owner, name = space_id.split("/")
    with session_scope() as session:
        container = session.scalar(
            select(Deployment.container_id)
            .join(Space, Space.id == Deployment.space_id)
            .where(Space.owner == owner, Space.name == name, Deployment.status == "standby")
        )
    if not container:
        return False
    try:
        logs = docker.from_env().containers.get(container).logs().decode()
    except docker.errors.NotFound:
        return False
    return "waiting for the app" in logs


def compiled_ready(bench: BenchNode, space_id: str) -> bool:
    """The Space's first build has its compiled stages (the warm task says so in its report)."""
    from sqlalchemy import select

    from spaceport.db.models import Build, Space
    from spaceport.db.session import session_scope

    owner, name = space_id.split("/")
    with session_scope() as session:
        space = session.scalar(select(Space).where(Space.owner == owner, Space.name == name))
        if space is None:
            return False
        build = session.scalar(select(Build).where(Build.space_id == space.id))
        report = (build.cache_report or {}) if build else {}
    return report.get("deps_stage") == "deps-compiled" or "warmed" in report


def new_space_timing(bench: BenchNode) -> float:
    """A second Space, with a dependency set of its own, pushed to a node that has built
    Gradio before: seconds from the push to RUNNING."""
    name = f"bench-{uuid.uuid4().hex[:6]}"
    with bench.api() as api:
        r = api.post("/api/repos/create", json={"type": "space", "name": name, "sdk": "gradio"})
        r.raise_for_status()
    space_id = f"admin/{name}"
    requirements = f"# {uuid.uuid4().hex}\nsix\n"
    started = time.monotonic()
    push(bench, app_copy("Hi", requirements), space_id)
    wait(lambda: stage(bench, space_id) == "RUNNING", 600, "RUNNING")
    took = time.monotonic() - started
    wait(lambda: greets(bench, space_id, "Hi"), 60, "the new Space")
    return took


def platform_rows(port: int, redis_db: int, cache_id: str) -> list[Row]:
    say("node with the default builder (uv, cache mounts, compiled dependency stage)")
    with node(port, redis_db, {"SPACEPORT_BUILD_CACHE_ID": f"{cache_id}-node"}) as ours:
        our_first, our_code, our_fresh = push_timings(ours, warm=True)
        say("a new Space with requirements of its own, on the same node")
        our_new = new_space_timing(ours)
    say("baseline node (plain pip, no cache)")
    baseline_env = {"SPACEPORT_BUILD_INSTALLER": "pip", "SPACEPORT_BUILD_CACHE": "false"}
    with node(port, redis_db, baseline_env) as base:
        base_first, base_code, base_again = push_timings(base, warm=False)
        base_new = new_space_timing(base)
    return [
        Row("push to RUNNING (Gradio, empty wheel cache)", our_first, base_first, "< 15 s"),
        Row("code-only push to new version serving (standby)", our_code, base_code, "< 5 s"),
        Row("code-only push, no standby yet (fresh container)", our_fresh, base_again, "< 5 s"),
        Row(
            "push to RUNNING, new Space with its own requirements (node has built Gradio)",
            our_new,
            base_new,
            "< 15 s",
        ),
    ]


LIBRARY_FIRST = "import sklearn.ensemble\n"
"""A library imported before the SDK (as `import torch` in most ML demos; torch is not in
this machine's package index, scikit-learn with SciPy is the heaviest import that is)."""


def library_first_rows(port: int, redis_db: int, cache_id: str) -> list[Row]:
    """A code-only push of an app that imports a library before Gradio: into the standby that
    imported both (builder's prewarm.py), and right after, into a fresh container (what every
    such push cost before: no standby was made for it)."""
    say("node with standbys; an app importing scikit-learn before gradio")
    with node(port, redis_db, {"SPACEPORT_BUILD_CACHE_ID": f"{cache_id}-first"}) as ours:
        _, standby, fresh = push_timings(
            ours, warm=True, requirements="scikit-learn\n", before=LIBRARY_FIRST
        )
    return [Row("code-only push, scikit-learn imported before gradio", standby, fresh, "<= 3 s")]


def pool_waiting() -> set[str]:
    """The node pool's containers whose interpreter imported the SDK and waits, by id."""
    import docker

    def waits(c: Any) -> bool:
        try:  # (the pool may remove one meanwhile)
            return b"waiting for the app" in c.logs()
        except docker.errors.NotFound:
            return False

    return {
        str(c.id)
        for c in docker.from_env().containers.list(filters={"label": "org.spaceport.pool"})
        if c.name.startswith("spaceport-pool-") and waits(c)
    }


def restart(bench: BenchNode, env: dict[str, str], names: tuple[str, ...]) -> None:
    """The node's processes `names` (worker, api) started again with `env` set."""
    from spaceport.node import ensure_api, ensure_worker
    from spaceport.settings import get_settings
    from spaceport.supervisor import stop_process

    os.environ.update(env)
    get_settings.cache_clear()
    for name in names:
        stop_process(bench.settings, name)
    starts = {"worker": ensure_worker, "api": ensure_api}
    for name in names:
        starts[name](get_settings(), say)


def restart_with_pool(bench: BenchNode, pool_mib: int) -> None:
    """The worker (whose deploys take from the pool) and the API (whose reconciler keeps it)
    with this pool budget."""
    restart(bench, {"SPACEPORT_POOL_BUDGET_MIB": str(pool_mib)}, ("worker", "api"))


def first_push_rows(port: int, redis_db: int, cache_id: str) -> list[Row]:
    """The first push of a new Space whose requirements another Space of the node uses (target
    5 of the density issue): into a node pool container, then with the pool off, one node."""
    env = {"SPACEPORT_BUILD_CACHE_ID": f"{cache_id}-pool", "SPACEPORT_STANDBY_TTL_S": "0"}
    with node(port, redis_db, env) as ours:
        say("a first Space of the dependency set, then its compiled stage and a pool container")
        restart_with_pool(ours, 256)
        seed = f"bench-{uuid.uuid4().hex[:6]}"
        with ours.api() as api:
            r = api.post("/api/repos/create", json={"type": "space", "name": seed, "sdk": "gradio"})
            r.raise_for_status()
        push(ours, app_copy("Hello"), f"admin/{seed}")
        wait(lambda: stage(ours, f"admin/{seed}") == "RUNNING", 600, "RUNNING")
        wait(lambda: compiled_ready(ours, f"admin/{seed}"), 300, "the warm build")
        wait(lambda: bool(pool_waiting()), 300, "a pool container")
        pooled, pooled_answer = new_space_same_deps(ours)
        restart_with_pool(ours, 0)
        fresh, fresh_answer = new_space_same_deps(ours)
    return [
        Row("first push to RUNNING, dependencies on the node", pooled, fresh, "<= 3 s"),
        Row("first push to the app answering", pooled_answer, fresh_answer, "<= 3 s"),
    ]


def new_space_same_deps(bench: BenchNode) -> tuple[float, float]:
    """A new Space with the default requirements: seconds from the push to RUNNING, and to
    the app answering through the proxy."""
    name = f"bench-{uuid.uuid4().hex[:6]}"
    with bench.api() as api:
        r = api.post("/api/repos/create", json={"type": "space", "name": name, "sdk": "gradio"})
        r.raise_for_status()
    space_id, src = f"admin/{name}", app_copy("Hey")
    started = time.monotonic()
    push(bench, src, space_id)
    wait(lambda: stage(bench, space_id) == "RUNNING", 600, "RUNNING")
    running = time.monotonic() - started
    wait(lambda: greets(bench, space_id, "Hey"), 60, "the new Space")
    return running, time.monotonic() - started


def table(rows: list[Row], load: float, ours: str, baseline: str) -> None:
    """The rows as docs/benchmarks.md's table, after the machine's size and load."""
    print(f"\n{os.cpu_count()} CPUs, load average {load:.1f} at start\n")
    print(f"| measure | {ours} | {baseline} | ratio | target |")
    print("| --- | --- | --- | --- | --- |")
    print("\n".join(row.line() for row in rows))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--port", type=int, default=18190, help="public port of the bench nodes")
    p.add_argument("--redis-db", type=int, default=9)
    p.add_argument("--skip-platform", action="store_true", help="builder measurements only")
    p.add_argument(
        "--library-first",
        action="store_true",
        help="only: code-only pushes of an app importing a library before its SDK",
    )
    p.add_argument(
        "--first-push",
        action="store_true",
        help="only: a new Space's first push, dependencies on the node, pool vs no pool",
    )
    args = p.parse_args()
    cache_id = f"spaceport-bench-{uuid.uuid4().hex[:8]}"
    load = os.getloadavg()[0]
    if args.first_push:
        table(first_push_rows(args.port, args.redis_db, cache_id), load, "node pool", "no pool")
        return 0
    if args.library_first:
        rows = library_first_rows(args.port, args.redis_db, cache_id)
        table(rows, load, "into the standby", "fresh container (before)")
        return 0
    rows = builder_rows(cache_id)
    if not args.skip_platform:
        rows += platform_rows(args.port, args.redis_db, cache_id)
    table(rows, load, "uv + cache", "pip, no cache")
    print(
        json.dumps({r.what: {"ours": round(r.ours, 2), "pip": round(r.baseline, 2)} for r in rows})
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
