"""Deleting a Space leaves nothing behind: container, image, /data volume, repo, route, row."""

from __future__ import annotations

import contextlib
import io
import time

import docker
import pytest

from tests.conftest import Node, need, unique
from tests.runtime.helpers import ECHO, app_text, containers, echo_space, hf, settled, wait_for

pytestmark = pytest.mark.slow


def test_delete_removes_everything(node: Node) -> None:
    from sqlalchemy import select

    from spaceport.db.models import Space
    from spaceport.db.session import session_scope
    from spaceport.lifecycle.storage import volume_name

    space_id = echo_space(node, "doomed")
    owner, name = space_id.split("/")
    with node.api() as c:
        assert c.post(f"/api/spaces/{space_id}/storage", json={"tier": "small"}).status_code == 200
    wait_for(lambda: app_text(node, space_id, "/data") == (200, "1"), 60)
    settled(node, space_id)  # the restart that mounted /data is over: one container, RUNNING
    with session_scope() as session:
        pk = session.scalar(select(Space.id).where(Space.owner == owner, Space.name == name))
    assert pk is not None
    volume = volume_name(node.settings, pk)
    client = docker.from_env()
    client.volumes.get(volume)  # exists
    images = {t for c in containers(space_id) for t in c.image.tags}
    assert images
    labels = client.images.get(next(iter(images))).labels
    assert labels["org.spaceport.space-pk"] == str(pk)
    assert labels["org.spaceport.instance"] == node.settings.instance

    hf(node).delete_repo(space_id, repo_type="space")

    assert containers(space_id, all=True) == []
    assert not [v for v in client.volumes.list() if v.name == volume]
    left = {t for img in client.images.list() for t in img.tags}
    assert not images & left, images & left
    assert not (node.settings.repos_dir / owner / f"{name}.git").exists()
    with session_scope() as session:
        assert session.get(Space, pk) is None
    r = node.app_get(space_id, headers={"Accept": "application/json"})
    assert r.status_code == 404
    with node.api() as c:
        assert c.get(f"/api/spaces/{space_id}/runtime").status_code == 404


def test_an_image_built_after_the_delete_is_removed(node: Node) -> None:
    """A build that ends after its Space was deleted (or a worker that tags late) leaves an
    image no row names: the reconciler's sweep finds it by its labels and removes it, and
    touches no image of a live Space or of another node."""
    from sqlalchemy import select

    from spaceport.db.models import Space
    from spaceport.db.session import session_scope

    space_id = echo_space(node, "late")
    owner, name = space_id.split("/")
    with session_scope() as session:
        pk = session.scalar(select(Space.id).where(Space.owner == owner, Space.name == name))
    live_images = {t for c in containers(space_id) for t in c.image.tags}
    hf(node).delete_repo(space_id, repo_type="space")
    client = docker.from_env()
    instance = node.settings.instance

    def late_image(tag: str, space_pk: int, node_instance: str) -> None:
        dockerfile = f"FROM scratch\nLABEL org.spaceport.space-pk={space_pk} "
        dockerfile += f"org.spaceport.instance={node_instance} org.spaceport.space={space_id}\n"
        # nocache: the legacy builder's cache lookup reads every image FROM scratch, and the
        # sweep may be removing the late one meanwhile (CI: "unable to find image sha256:…").
        client.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=tag, rm=True, nocache=True)

    late, other_node = f"spaceport/space-{pk}-late:after-delete", f"spaceport/space-{pk}-x:other"
    late_image(other_node, pk, "another-node")  # first: the sweep never removes this one
    late_image(late, pk, instance)
    try:

        def tags() -> set[str]:  # one engine call: images the sweep removes meanwhile are fine
            return {t for img in client.api.images() for t in img.get("RepoTags") or ()}

        wait_for(lambda: late not in tags(), 30)
        assert other_node in tags()  # another node's image: not ours to judge
        assert not live_images & tags()
        survivor = echo_space(node, "survivor")
        image = next(t for c in containers(survivor) for t in c.image.tags)
        time.sleep(3 * node.settings.reconcile_interval_s)
        assert image in tags()  # some sweeps later, a live Space's image is still there
    finally:
        for tag in (late, other_node):
            with contextlib.suppress(docker.errors.ImageNotFound):
                client.images.remove(tag)


def test_stop_returns_once_a_removal_by_another_process_is_over(node: Node) -> None:
    """The janitor may be removing a container when a delete stops it: `stop` must return only
    once it is gone, as the delete removes its /data volume next (CI saw "volume is in use")."""
    import threading

    from spaceport.engine.docker_backend import DockerBackend

    client = docker.from_env()
    image = f"{node.settings.base_image_repo}:{node.settings.default_python}"
    backend = DockerBackend(node.settings)

    def janitor(container_id: str) -> None:  # which of the two removes it is a race
        with contextlib.suppress(docker.errors.APIError):
            client.api.remove_container(container_id, force=True)

    for _ in range(5):
        c = client.containers.run(image, ["sleep", "300"], detach=True, init=False)
        other = threading.Thread(target=janitor, args=(c.id,))
        other.start()
        backend.stop(c.id or "", timeout=0)
        with pytest.raises(docker.errors.NotFound):
            client.containers.get(c.id)
        other.join()


def test_a_delete_during_a_start_leaves_nothing_behind(node: Node) -> None:
    """A start in flight when its Space is deleted creates nothing afterwards: once the delete
    has answered, no container or volume of the Space exists or appears. The start here is
    stopping the old version first (its /data disk grows), which takes the engine's whole
    grace (the app ignores SIGTERM); it once went on to create the volume again."""
    from sqlalchemy import select

    from spaceport.db.models import Space
    from spaceport.db.session import session_scope
    from spaceport.engine import data_disks
    from spaceport.lifecycle.locks import is_locked
    from spaceport.lifecycle.storage import volume_name

    need(data_disks.unavailable_reason() is None, "size-limited /data disks (root, loop devices)")
    space_id = node.create_space(unique("midstart"), sdk="docker")
    owner, name = space_id.split("/")
    api = hf(node)
    api.add_space_variable(space_id, "IGNORE_SIGTERM", "1")
    with node.api() as c:
        assert c.post(f"/api/spaces/{space_id}/storage", json={"tier": "small"}).status_code == 200
    assert node.push(ECHO, space_id).returncode == 0
    node.wait_stage(space_id, {"RUNNING"}, timeout=180)
    settled(node, space_id)
    with session_scope() as session:
        pk = session.scalar(select(Space.id).where(Space.owner == owner, Space.name == name))
    assert pk is not None
    volume = volume_name(node.settings, pk)
    client = docker.from_env()
    client.volumes.get(volume)

    with node.api() as c:  # a larger disk: the old version stops before the new one starts
        assert c.post(f"/api/spaces/{space_id}/storage", json={"tier": "medium"}).status_code == 200
    wait_for(lambda: node.app_get(space_id).status_code == 503, 30)  # the old one stops
    assert is_locked(node.settings, pk)  # the start is in flight

    api.delete_repo(space_id, repo_type="space")
    answered = int(time.time())
    wait_for(lambda: not is_locked(node.settings, pk), 60)  # the start in flight is over

    assert containers(space_id, all=True) == []
    assert volume not in {v.name for v in client.volumes.list()}
    events = client.events(
        since=answered, until=int(time.time()) + 1, decode=True, filters={"event": "create"}
    )
    created = [
        e
        for e in events
        if e["Actor"]["Attributes"].get("org.spaceport.space") == space_id
        or e["Actor"].get("ID") == volume
    ]
    assert created == [], created


def test_the_node_lists_stopped_containers_from_one_call_and_live_ones_in_full(
    node: Node,
) -> None:
    """At a thousand deep-sleeping Spaces the node holds a thousand stopped containers: the
    engine's list reads them from its summary (one call, not an inspect each), with their exit
    code; the live ones still come with their process and address. `running_of` says which of
    some containers still run (or are frozen) in one call."""
    from spaceport.engine.base import LABEL_INSTANCE
    from spaceport.engine.docker_backend import DockerBackend

    client = docker.from_env()
    image = f"{node.settings.base_image_repo}:{node.settings.default_python}"
    labels = {LABEL_INSTANCE: node.settings.instance, "org.spaceport.test": unique("list")}
    exited = client.containers.run(image, ["sh", "-c", "exit 3"], detach=True, labels=labels)
    exited.wait()
    created = client.containers.create(image, ["sleep", "300"], labels=labels)
    running = client.containers.run(image, ["sleep", "300"], detach=True, labels=labels)
    frozen = client.containers.run(image, ["sleep", "300"], detach=True, labels=labels)
    frozen.pause()
    mine = [exited, created, running, frozen]
    try:
        backend = DockerBackend(node.settings)
        listed = {
            s.id: s
            for s in backend.list(label=f"org.spaceport.test={labels['org.spaceport.test']}")
        }
        assert set(listed) == {c.id for c in mine}
        assert (listed[exited.id].status, listed[exited.id].exit_code) == ("exited", 3)
        assert listed[exited.id].name == exited.name and not listed[exited.id].running
        assert listed[created.id].status == "created" and listed[created.id].exit_code is None
        assert listed[running.id].running and listed[running.id].pid > 0
        assert listed[frozen.id].paused and listed[frozen.id].pid > 0
        assert listed[running.id].labels == {**listed[running.id].labels, **labels}
        ids = [c.id or "" for c in mine] + ["0" * 64]
        assert backend.running_of(ids) == {running.id, frozen.id}
        assert backend.running_of([]) == set()
    finally:
        for c in mine:
            c.remove(force=True)
