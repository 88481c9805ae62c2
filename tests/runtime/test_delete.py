"""Deleting a Space leaves nothing behind: container, image, /data volume, repo, route, row."""

from __future__ import annotations

import docker
import pytest

from tests.conftest import Node
from tests.runtime.helpers import app_text, containers, echo_space, hf, settled, wait_for

pytestmark = pytest.mark.slow


def test_delete_removes_everything(node: Node) -> None:
    from sqlalchemy import select

    from spaceport.db.models import Space
    from spaceport.db.session import session_scope
    from spaceport.runtime.storage import volume_name

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
