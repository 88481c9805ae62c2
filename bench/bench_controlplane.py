"""Control-plane benchmark: the node's own work at 1,000 Spaces against 10, side by side in one run.

Two nodes' databases are filled, one with 10 Spaces and one with 1,000 (`--spaces`), and the
same operations are timed on both, interleaved round by round (docs/benchmarks.md,
"Control plane"):
- one reconciler pass (`reconciler.reconcile_once`, every step, against the real Docker engine
  and the node's real nginx);
- one route-table update (`sync_routes` after one Space's upstream moved, as a wake does);
- `GET /api/spaces` (Hugging Face's list: one page, and every page by its `Link` header);
- `GET /api/v1/spaces` (`spaceport list`), and one page of it (`?limit=100`: what the
  console's list polls every 3 s once there are more Spaces than a page);
- the console's Space list page (`GET /`, signed in as the admin: one page of 100 cards once
  there are more);
- the admin view (`GET /api/v1/admin/overview` and the console's `/admin` page).

What the Spaces are: owners spread over 20 users; four SDKs; three shared dependency sets
(every build's image is one of three tags); three builds each (a 16 KiB log apiece), one
earlier stopped deployment each; a git repo each with one commit (README front matter).
`--awake` of them run (a real container each, `python -m http.server`), 2 % failed their
build, the rest deep-sleep: desired `sleeping`, their last deployment stopped and NO container
(the kept stopped container of a deep-slept CPU Space is not modelled: see docs).

HTTP routes run in this process through the ASGI app (FastAPI's TestClient: no socket, no
proxy in front); the reconciler and route sync run as the API's reconciler thread runs them.

    PYTHONPATH=platform:builder .venv/bin/python bench/bench_controlplane.py [--rounds 15]

Needs: Docker with the image spaceport/python:3.11, Redis (`--redis`), nginx with its Lua
module (`make system`). Prints one JSON object, medians and p95 in milliseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import docker
import httpx
from fastapi.testclient import TestClient

from spaceport.db.models import Build, Deployment, Space, User, utcnow

IMAGE = "spaceport/python:3.11"
SDKS = ("gradio", "streamlit", "static", "docker")
DEP_SETS = 3
LOG = ("Step 1/12 : FROM spaceport/python:3.11\n" + "x" * 120 + "\n") * 128  # 16 KiB


@dataclass
class Dataset:
    n: int
    awake: int
    port: int
    data: Path
    env: dict[str, str] = field(default_factory=dict)
    client: TestClient | None = None
    cookie: str = ""
    token: str = ""
    times: dict[str, list[float]] = field(default_factory=dict)


def activate(ds: Dataset) -> Any:
    """Point this process's settings and database engine at `ds` (untimed)."""
    from spaceport.db import session as db_session
    from spaceport.settings import get_settings

    os.environ.update(ds.env)
    get_settings.cache_clear()
    db_session.get_engine.cache_clear()
    db_session._factory.cache_clear()
    return get_settings()


def template_repo(root: Path) -> tuple[Path, str]:
    """A bare repo with one commit (README front matter, app.py) that every Space copies."""
    work, bare = root / "tmpl-work", root / "tmpl.git"
    work.mkdir()
    (work / "README.md").write_text(
        "---\ntitle: Bench\nemoji: 🚀\ncolorFrom: blue\ncolorTo: green\nsdk: gradio\n"
        "tags:\n  - bench\n---\n\n# Bench\n"
    )
    (work / "app.py").write_text("import gradio as gr\n")
    env = {**os.environ, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@x.invalid"}
    env |= {"GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@x.invalid"}
    for argv in (["git", "init", "-q", "-b", "main"], ["git", "add", "-A"]):
        subprocess.run(argv, cwd=work, env=env, check=True)
    subprocess.run(["git", "commit", "-qm", "first"], cwd=work, env=env, check=True)
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(bare)], check=True)
    sha = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=work, capture_output=True, text=True, check=True
    ).stdout.strip()
    return bare, sha


def seed(ds: Dataset, tmpl: Path, sha: str, dk: docker.DockerClient) -> None:
    """Migrate, then write the Spaces, builds, deployments, repos and awake containers."""
    from spaceport.auth.sessions import start_session
    from spaceport.composition import prepare
    from spaceport.db.session import session_scope
    from spaceport.engine.base import (
        LABEL_DEPLOYMENT,
        LABEL_INSTANCE,
        LABEL_MANAGED,
        LABEL_SPACE,
        LABEL_SPACE_PK,
    )
    from spaceport.git.repos import repo_path
    from spaceport.stages import BuildStatus, DeploymentStatus, Stage

    settings = activate(ds)
    prepare(settings)
    now = utcnow()
    awake: list[int] = []
    with session_scope() as session:
        for i in range(ds.n):
            sdk = SDKS[i % len(SDKS)]
            failed = i % 50 == 49
            runs = i < ds.awake
            space = Space(
                owner="admin" if i % 20 == 0 else f"user{i % 20}",
                name=f"app-{i:04d}",
                sdk=sdk,
                private=i % 7 == 0,
                card_data={"title": f"App {i}", "emoji": "🚀", "sdk": sdk, "colorFrom": "blue"},
                hardware_requested="cpu-basic",
                desired="running" if runs or failed else "sleeping",
                stage=Stage.RUNNING if runs else (Stage.BUILD_ERROR if failed else Stage.SLEEPING),
                head_sha=sha,
                created_at=now - timedelta(minutes=ds.n - i),
                last_request_at=now,
            )
            session.add(space)
            session.flush()
            for b in range(3):
                build = Build(
                    space_id=space.id,
                    commit_sha=sha,
                    status=BuildStatus.FAILED if failed and b == 2 else BuildStatus.SUCCEEDED,
                    image=f"spaceport/deps-bench:{i % DEP_SETS}",
                    log=LOG,
                    created_at=now - timedelta(minutes=ds.n - i - b),
                    finished_at=now - timedelta(minutes=ds.n - i - b),
                )
                session.add(build)
            session.flush()
            old = Deployment(
                space_id=space.id,
                build_id=build.id,
                image=build.image or IMAGE,
                commit_sha=sha,
                upstream="10.99.0.1:7860",
                status=DeploymentStatus.STOPPED,
                stopped_at=now - timedelta(hours=1),
            )
            session.add(old)
            if runs:
                dep = Deployment(
                    space_id=space.id,
                    build_id=build.id,
                    image=IMAGE,
                    commit_sha=sha,
                    status=DeploymentStatus.ACTIVE,
                    ready_at=now,
                )
                session.add(dep)
                session.flush()
                awake.append(dep.id)
            dest = repo_path(settings, space.owner, space.name)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copytree(tmpl, dest)
        admin = session.query(User).filter_by(name="admin").one()
        ds.cookie = start_session(session, admin, "write")
    with session_scope() as session:
        for dep_id in awake:
            dep = session.get(Deployment, dep_id)
            assert dep is not None
            space = session.get(Space, dep.space_id)
            assert space is not None
            c = dk.containers.run(
                IMAGE,
                ["python", "-m", "http.server", "7860"],
                detach=True,
                labels={
                    LABEL_INSTANCE: settings.instance,
                    LABEL_MANAGED: "true",
                    LABEL_DEPLOYMENT: str(dep_id),
                    LABEL_SPACE: space.space_id,
                    LABEL_SPACE_PK: str(space.id),
                },
            )
            c.reload()
            dep.container_id = c.id
            dep.upstream = f"{c.attrs['NetworkSettings']['IPAddress']}:7860"


def start_proxy(ds: Dataset) -> None:
    from spaceport.proxy import proxy_process

    asyncio.run(proxy_process(activate(ds)).start())


def stop_proxy(ds: Dataset) -> None:
    from spaceport.proxy import proxy_process

    asyncio.run(proxy_process(activate(ds)).stop())


def make_client(ds: Dataset) -> None:
    from spaceport.api.app import create_app
    from spaceport.auth.sessions import SESSION_COOKIE

    settings = activate(ds)
    ds.client = TestClient(create_app(settings, reconcile=False), base_url=settings.url)
    ds.client.cookies.set(SESSION_COOKIE, ds.cookie)


def move_one_route(ds: Dataset, i: int) -> None:
    """What a wake does to the table: one Space's upstream moves (untimed)."""
    from sqlalchemy import select

    from spaceport.db.session import session_scope
    from spaceport.stages import DeploymentStatus

    with session_scope() as session:
        dep = session.scalars(
            select(Deployment).where(Deployment.status == DeploymentStatus.ACTIVE).limit(1)
        ).first()
        if dep is not None:
            dep.upstream = f"10.98.{i % 250}.{1 + i % 250}:7860"


def ok_get(
    client: httpx.Client, path: str, headers: dict[str, str] | None = None
) -> Callable[[], object]:
    """An operation: GET `path`, which must answer 200."""

    def run() -> object:
        r = client.get(path, headers=headers)
        assert r.status_code == 200, (path, r.status_code, r.text[:300])
        return r

    return run


def every_page(client: httpx.Client, headers: dict[str, str] | None = None) -> int:
    """Hugging Face's Space list walked page by page (its `Link` header): how many Spaces."""
    url: str | None = "/api/spaces"
    total = 0
    while url:
        r = client.get(url, headers=headers)
        assert r.status_code == 200, r.text[:300]
        total += len(r.json())
        url = r.links.get("next", {}).get("url")
    return total


def operations(ds: Dataset) -> dict[str, Callable[[], object]]:
    from spaceport.lifecycle.proxy_routes import sync_routes
    from spaceport.reconciler import reconcile_once

    assert ds.client is not None
    c = ds.client
    bearer = {"Authorization": f"Bearer {ds.token}"}

    def get(path: str, headers: dict[str, str] | None = None) -> Callable[[], object]:
        return ok_get(c, path, headers)

    def pages() -> object:
        total = every_page(c, bearer)
        assert total == ds.n, (total, ds.n)
        return total

    settings = activate(ds)
    return {
        "reconcile_pass": lambda: reconcile_once(settings),
        "route_update": lambda: sync_routes(settings),
        "api_spaces_page": get("/api/spaces?limit=100", bearer),
        "api_spaces_all": pages,
        "api_v1_spaces": get("/api/v1/spaces", bearer),
        "api_v1_spaces_page": get("/api/v1/spaces?limit=100", bearer),
        "console_list": get("/"),
        "admin_overview": get("/api/v1/admin/overview", bearer),
        "console_admin": get("/admin"),
    }


def p95(xs: list[float]) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, round(0.95 * (len(s) - 1)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spaces", type=int, default=1000)
    ap.add_argument("--small", type=int, default=10)
    ap.add_argument("--awake", type=int, default=20, help="awake Spaces at --spaces")
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--port", type=int, default=18284, help="public ports: this and this+2")
    ap.add_argument("--redis", default="redis://127.0.0.1:6379/8")
    ap.add_argument("--keep", action="store_true", help="keep the data dirs (for profiling)")
    ap.add_argument("--profile", metavar="OP", help="after the rounds, profile OP at --spaces")
    args = ap.parse_args()

    root = Path(tempfile.mkdtemp(prefix="spaceport-bench-cp-"))
    tmpl, sha = template_repo(root)
    dk = docker.from_env()
    token = "sp_bench_" + os.urandom(8).hex()
    sets = [
        Dataset(
            n=args.small,
            awake=max(1, args.awake * args.small // args.spaces),
            port=args.port,
            data=root / "small",
        ),
        Dataset(n=args.spaces, awake=args.awake, port=args.port + 2, data=root / "large"),
    ]
    load_before = os.getloadavg()
    try:
        for ds in sets:
            ds.token = token
            ds.env = {
                "SPACEPORT_DATA": str(ds.data),
                "SPACEPORT_URL": f"http://localhost:{ds.port}",
                "SPACEPORT_LISTEN": f"127.0.0.1:{ds.port}",
                "SPACEPORT_API_PORT": str(ds.port + 1),
                "SPACEPORT_REDIS_URL": args.redis,
                "SPACEPORT_ADMIN_TOKEN": token,
                "SPACEPORT_STANDBY_TTL_S": "0",
            }
            t0 = time.perf_counter()
            seed(ds, tmpl, sha, dk)
            start_proxy(ds)
            make_client(ds)
            print(f"seeded {ds.n} Spaces in {time.perf_counter() - t0:.1f} s", flush=True)
        ops = {ds.n: operations(ds) for ds in sets}
        for ds in sets:  # warm: caches (git reads, templates), the proxy's first table
            activate(ds)
            for fn in ops[ds.n].values():
                fn()
        for r in range(args.rounds):
            for ds in sets:
                activate(ds)
                for name, fn in ops[ds.n].items():
                    if name == "route_update":
                        move_one_route(ds, r)
                    t = time.perf_counter()
                    fn()
                    ds.times.setdefault(name, []).append((time.perf_counter() - t) * 1000)
        out: dict[str, Any] = {
            "spaces": {str(ds.n): {"awake": ds.awake} for ds in sets},
            "rounds": args.rounds,
            "cpus": os.cpu_count(),
            "loadavg_before": [round(x, 2) for x in load_before],
            "loadavg_after": [round(x, 2) for x in os.getloadavg()],
            "ms": {},
        }
        for name in ops[sets[0].n]:
            row = {}
            for ds in sets:
                xs = ds.times[name]
                row[str(ds.n)] = {
                    "median": round(statistics.median(xs), 1),
                    "p95": round(p95(xs), 1),
                }
            small, large = (statistics.median(ds.times[name]) for ds in sets)
            row["ratio"] = round(large / small, 1) if small else None
            out["ms"][name] = row
        print(json.dumps(out, indent=2))
        if args.profile:
            import cProfile
            import pstats

            activate(sets[-1])
            profiler = cProfile.Profile()
            profiler.runcall(ops[sets[-1].n][args.profile])
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(40)
    finally:
        for ds in sets:
            try:
                stop_proxy(ds)
            except Exception as exc:  # cleanup goes on
                print(f"proxy stop: {exc!r}")
            settings = activate(ds)
            for c in dk.containers.list(
                all=True, filters={"label": f"org.spaceport.instance={settings.instance}"}
            ):
                c.remove(force=True)
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
        else:
            print(f"kept {root}")


if __name__ == "__main__":
    main()
