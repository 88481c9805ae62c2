"""The dev cluster's record outlives its processes (a machine restarted, or a session's
processes killed, keeps /var/lib and here /run too): `up` must not take such a record for a
running cluster. CI once failed every cluster test on a stale record whose engines were gone."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from spaceport import devcluster


def test_a_recorded_cluster_whose_manager_is_gone_is_not_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if shutil.which("docker") is None:
        pytest.fail("the docker CLI is missing (make test installs docker.io)")
    monkeypatch.setattr(devcluster, "STATE", tmp_path / "state")
    monkeypatch.setattr(devcluster, "RUN", tmp_path / "run")
    assert not devcluster.running()  # nothing recorded
    devcluster.STATE.mkdir()
    socket = tmp_path / "run" / "node1.sock"
    record = {
        "index": 1, "name": "node1", "ip": "10.99.0.11", "engine": f"unix://{socket}",
        "gpus": [], "manager": True,
    }  # fmt: skip
    (devcluster.STATE / "cluster.json").write_text(json.dumps({"nodes": [record]}))
    assert [n.name for n in devcluster.nodes()] == ["node1"]
    assert not devcluster.running()  # its engine's socket leads nowhere
    # The socket file left behind by a killed dockerd: refused, still not running.
    socket.parent.mkdir()
    subprocess.run(
        ["python3", "-c", f"import socket; s=socket.socket(socket.AF_UNIX); s.bind('{socket}')"],
        check=True,
    )
    assert socket.exists() and not devcluster.running()
