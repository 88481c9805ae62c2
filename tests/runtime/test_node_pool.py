"""The node pool (lifecycle/node_pool.py): containers bound to no Space that already imported
Gradio, taken once by the Space that starts next on their dependency set (a first push, a
deep-sleep wake), refilled, and removed when the pool is turned off. A taken container holds
only its Space's environment, files and processes, never anything of a Space before it."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import docker
import pytest

from tests.builder.helpers import clean_later, head_sha, variant, wait_deployed
from tests.conftest import Node, unique
from tests.runtime.helpers import hf, node_env, restart_processes, serves_at_normal_weight, wait_for
from tests.runtime.test_standby import answer, serving
from tests.runtime.test_wake_standby import visit

pytestmark = pytest.mark.slow

# What the app answers: its environment, its directory's files, and every process it can see
# with their command lines and environments.
APP = """import json
import os

import gradio as gr


def seen() -> dict:
    procs = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\\0", b" ").decode(errors="replace")
            with open(f"/proc/{pid}/environ", "rb") as f:
                env = f.read().decode(errors="replace")
        except OSError:
            continue
        procs[pid] = {"cmd": cmd, "env": env}
    return {"env": dict(os.environ), "files": sorted(os.listdir(".")), "procs": procs}


def greet(name: str) -> str:
    return json.dumps(seen())


gr.Interface(fn=greet, inputs=gr.Textbox(label="Name"), outputs=gr.Textbox()).launch()
"""


@pytest.fixture
def pool_on(node: Node) -> Iterator[None]:
    """The node's worker (whose deploys take from the pool) and API (whose reconciler keeps
    it and whose jobs wake Spaces) with a pool of two containers for the test's dependency
    set, and two for each set the node's other Spaces use (tests before this one may have
    left some); off again afterwards."""
    from spaceport.engine import make_backend
    from spaceport.lifecycle import node_pool

    sets = len(node_pool.demand(node.settings, make_backend(node.settings))) + 1
    with node_env(node, {"SPACEPORT_POOL_BUDGET_MIB": str(2 * node_pool.POOL_MIB * sets)}):
        yield


def dependency_set(space_id: str) -> str:
    """The image of the compiled dependency set the Space's pool containers run ("" before
    its first build compiled it)."""
    from sqlalchemy import select

    from spaceport.build_report import compiled_fingerprint, compiled_image
    from spaceport.db.models import Build, Space
    from spaceport.db.session import session_scope

    owner, name = space_id.split("/")
    with session_scope() as session:
        reports = session.scalars(
            select(Build.cache_report)
            .join(Space, Space.id == Build.space_id)
            .where(Space.owner == owner, Space.name == name)
        ).all()
    fingerprints = [fp for r in reports if (fp := compiled_fingerprint(r))]
    return compiled_image(fingerprints[0]) if fingerprints else ""


def pool(image: str = "") -> list[str]:
    """The pool's containers (of one dependency set's image) whose launcher imported Gradio
    and waits, by id."""
    label = f"org.spaceport.pool={image}" if image else "org.spaceport.pool"
    found = []
    for c in docker.from_env().containers.list(filters={"label": label}):
        if c.name.startswith("spaceport-pool-") and b"waiting for the app" in c.logs():
            found.append(str(c.id))
    return found


def full_pool(space_id: str) -> Callable[[], list[str] | None]:
    """The pool of the Space's dependency set once (at least) two of its containers wait."""

    def check() -> list[str] | None:
        image = dependency_set(space_id)
        found = pool(image) if image else []
        return found if len(found) >= 2 else None

    return check


def pooled_all() -> list[str]:
    return [
        str(c.id)
        for c in docker.from_env().containers.list(
            all=True, filters={"label": "org.spaceport.pool"}
        )
    ]


def kept_code(node: Node, image: str) -> bool:
    """The node keeps an archive of the image's app directory (a wake writes it at once)."""
    digest = docker.from_env().images.get(image).id.removeprefix("sha256:")
    return any((node.settings.data / "cache" / "image-files").glob(f"{digest}-*.tar"))


def seen_by(node: Node, space_id: str) -> dict:
    return dict(json.loads(json.loads(answer(node, space_id))[0]))


def push(node: Node, tmp: Path, space_id: str, marker: str) -> None:
    app = variant(tmp, "gradio-hello", **{"app.py": APP, marker: "x"})
    assert node.push(app, space_id).returncode == 0
    wait_deployed(node, space_id, timeout=300)


def test_spaces_take_pool_containers_that_carry_nothing_of_another(
    node: Node, pool_on: None, tmp_path: Path
) -> None:
    from spaceport.lifecycle.hardware import resolve_flavor

    first, second, third = (node.create_space(unique(p)) for p in ("poola", "poolb", "poolc"))
    first_secret, second_secret = (f"s-{uuid.uuid4().hex}" for _ in range(2))
    try:
        hf(node).add_space_secret(first, "FIRST_TOKEN", first_secret)
        hf(node).add_space_secret(second, "SECOND_TOKEN", second_secret)
        push(node, tmp_path, first, "first.txt")
        # The pool fills for the first Space's dependency set: two containers, bound to none.
        ready = wait_for(full_pool(first), 300, every=0.5)
        for cid in ready:
            env = docker.from_env().api.inspect_container(cid)["Config"]["Env"]
            assert not any(e.startswith(("SPACE_ID=", "FIRST_TOKEN=")) for e in env)
            assert first_secret not in json.dumps(env)

        # A new Space of the same dependencies: its first version starts in one of them.
        push(node, tmp_path, second, "second.txt")
        taken = serving(second)["container"]
        assert taken in ready
        info = docker.from_env().api.inspect_container(taken)
        assert info["Name"].lstrip("/").startswith("spaceport-admin-poolb")
        wait_for(lambda: serves_at_normal_weight(taken), 10)
        flavor = resolve_flavor(node.settings, None)
        assert info["HostConfig"]["Memory"] == flavor.memory_bytes
        seen = seen_by(node, second)
        assert seen["env"]["SPACE_ID"] == second
        assert seen["env"]["SECOND_TOKEN"] == second_secret
        assert seen["env"]["SPACE_COMMIT_SHA"] == head_sha(node, second)
        assert "FIRST_TOKEN" not in seen["env"] and first_secret not in json.dumps(seen)
        assert "second.txt" in seen["files"] and "first.txt" not in seen["files"]
        assert first not in json.dumps(seen["procs"])

        # Taken once: it never returns to the pool, which refills with a new container.
        refilled = wait_for(full_pool(first), 300, every=0.5)
        assert taken not in refilled

        # A deep-sleeping Space wakes into another: its own environment, files and commit.
        with node.api() as api:
            r = api.post(f"/api/v1/spaces/{first}/sleep", params={"deep": True})
            assert r.status_code == 200, r.text
        node.wait_stage(first, {"SLEEPING"}, timeout=60)
        # Its code is kept ready on the node's disk for the wake (engine/image_files.py).
        wait_for(lambda: kept_code(node, serving(first)["image"]), 60)
        available = wait_for(full_pool(first), 300, every=0.5)
        visit(node, first)
        woke = serving(first)["container"]
        assert woke in available and woke != taken
        seen = seen_by(node, first)
        assert seen["env"]["FIRST_TOKEN"] == first_secret
        assert seen["env"]["SPACE_COMMIT_SHA"] == head_sha(node, first)
        assert "SECOND_TOKEN" not in seen["env"] and second_secret not in json.dumps(seen)
        assert "first.txt" in seen["files"] and "second.txt" not in seen["files"]

        # A Space whose own variable configures a library at import starts fresh.
        hf(node).add_space_variable(third, "HF_HUB_OFFLINE", "1")
        before = set(pool())
        push(node, tmp_path, third, "third.txt")
        assert serving(third)["container"] not in before | set(pooled_all())
    finally:
        for space_id in (first, second, third):
            hf(node).delete_repo(space_id, repo_type="space", missing_ok=True)
        clean_later([first, second, third])
    # Deleted Spaces leave none of their (pool-made) containers behind.
    assert taken not in pooled_all() and woke not in pooled_all()

    # The pool turned off: its containers go.
    os.environ["SPACEPORT_POOL_BUDGET_MIB"] = "0"
    restart_processes(node, worker=False)
    wait_for(lambda: pooled_all() == [], 60)
