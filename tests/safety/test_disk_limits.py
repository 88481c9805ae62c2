"""An app that fills its /data hits the size of its storage tier ("No space left on device"),
not the node's disk: the app, its neighbours and the control plane keep answering, and freeing
space makes /data usable again. A larger tier grows the disk with the data kept; a smaller one
is refused with what to do.

An app that fills its own files outside /data (its writable layer) past `app_writable_max`
is stopped with that reason, its bytes removed, and restarted from its image.

The node runs with small tiers (`SPACEPORT_DATA_SIZES` in tests/conftest.py: small 64 MiB,
medium 96 MiB) so a disk fills in a second, and a writable-layer limit of 300 MiB measured
every 30 s (the default).
"""

from __future__ import annotations

import contextlib
import os
import re

import pytest

from tests.conftest import Node, need, unique
from tests.runtime.helpers import app_text, echo_space, error_message, settled, wait_for

pytestmark = pytest.mark.slow
MiB = 1024**2


def _data_size(node: Node, space_id: str) -> int:
    """/data's size in bytes as the app sees it (`df` inside its container)."""
    out = settled(node, space_id).exec_run(["df", "-B1", "--output=size", "/data"], user="1000")
    return int(out.output.decode().split()[-1])


def space_pk(space_id: str) -> int:
    from sqlalchemy import select

    from spaceport.db.models import Space
    from spaceport.db.session import session_scope

    owner, name = space_id.split("/")
    with session_scope() as session:
        pk = session.scalar(select(Space.id).where(Space.owner == owner, Space.name == name))
    assert pk is not None
    return pk


def test_filling_data_hits_the_tier_size_not_the_node_disk(node: Node) -> None:
    from spaceport.engine import data_disks
    from spaceport.lifecycle.storage import volume_name

    need(data_disks.unavailable_reason() is None, f"{data_disks.unavailable_reason()}")
    space_id = echo_space(node, "filler")
    image = data_disks.image_path(node.settings, volume_name(node.settings, space_pk(space_id)))
    with node.api() as c:
        assert c.post(f"/api/spaces/{space_id}/storage", json={"tier": "small"}).status_code == 200
    wait_for(lambda: app_text(node, space_id, "/data") == (200, "1"), 60)
    container = settled(node, space_id)
    assert 56 * MiB < _data_size(node, space_id) <= 64 * MiB
    assert container.exec_run(["ls", "-A", "/data"]).output.split() == [b"visits"]
    host_free = os.statvfs(node.data).f_bavail * os.statvfs(node.data).f_frsize

    fill = container.exec_run(
        ["dd", "if=/dev/zero", "of=/data/fill", "bs=1M", "count=200"], user="1000"
    )
    assert fill.exit_code != 0
    assert b"No space left on device" in fill.output, fill.output

    # Only the disk's own file grew, by at most its size; the node's disk is not full.
    assert image.exists(), "the Space's /data is not a disk of its own"
    assert image.stat().st_blocks * 512 <= 66 * MiB
    host_free_after = os.statvfs(node.data).f_bavail * os.statvfs(node.data).f_frsize
    assert host_free - host_free_after < 100 * MiB

    # The app, the control plane and the proxy still answer; the full disk is the app's problem.
    assert app_text(node, space_id, "/")[0] == 200
    with node.api() as c:
        assert c.get(f"/api/spaces/{space_id}/runtime").json()["stage"] == "RUNNING"
    assert container.exec_run(["rm", "/data/fill"], user="1000").exit_code == 0
    assert app_text(node, space_id, "/data") == (200, "2")

    # A larger tier grows the disk in place, the data kept; a smaller one is refused.
    with node.api() as c:
        assert c.post(f"/api/spaces/{space_id}/storage", json={"tier": "medium"}).status_code == 200
    wait_for(lambda: _data_size(node, space_id) > 88 * MiB, 90)
    assert app_text(node, space_id, "/data") == (200, "3")
    with node.api() as c:
        r = c.post(f"/api/spaces/{space_id}/storage", json={"tier": "small"})
    assert r.status_code == 409
    assert "delete it first" in r.json()["error"], r.text

    # Dropping the storage removes the disk: unmounted, its file gone.
    with node.api() as c:
        assert c.delete(f"/api/spaces/{space_id}/storage").status_code == 200
    mount_point = image.with_suffix("")
    wait_for(lambda: not image.exists() and not mount_point.exists(), 90)


def test_filling_the_writable_layer_stops_the_app_and_frees_the_bytes(node: Node) -> None:
    import docker

    from tests.safety.test_isolation import PROBE, probe

    space_id = node.create_space(unique("writer"), sdk="docker")
    assert node.push(PROBE, space_id).returncode == 0
    node.wait_stage(space_id, {"RUNNING"})
    client = docker.from_env()
    first = settled(node, space_id)

    # 400 MiB into /home/user/app: runc has no quota, the measurement comes after (stopped
    # while writing, the app's answer is the proxy's status page instead)
    with contextlib.suppress(AssertionError):
        probe(node, space_id, "/fill?mb=400")

    message = error_message(node, space_id, "outside /data", 60)
    assert re.search(r"The app wrote [34]\d\d\.\dMB to its own files outside /data", message)
    assert "over the limit of 314.6MB" in message and "keep large files in /data" in message

    def removed() -> bool:  # with its writable layer
        try:
            client.containers.get(first.id)
        except docker.errors.NotFound:
            return True
        return False

    wait_for(removed, 30)

    # Restarted on its own from its image: the file is gone, the app answers.
    node.wait_stage(space_id, {"RUNNING"}, timeout=120)
    again = settled(node, space_id)
    assert again.id != first.id
    assert again.exec_run(["ls", "/home/user/app"]).output.split() == [b"probe.py"]
    assert node.app_get(space_id, "/").status_code == 200
