"""A disk full during a build: the build fails with the reason, the running version serves on,
and the next push after space is freed builds and runs.

The node's build working directory (where each commit is exported) is covered by a 64 KB
tmpfs for the duration: the export of a commit with a 1 MB file runs out of space there,
as it would on a full disk.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Node, need
from tests.runtime.helpers import ECHO, app_text, containers, hf, wait_for

pytestmark = pytest.mark.slow
LABEL_COMMIT = "org.spaceport.commit"


@pytest.fixture
def full_build_disk(node: Node) -> Iterator[Path]:
    need(os.geteuid() == 0 and shutil.which("mount") is not None, "root and mount (tmpfs)")
    builds = node.settings.run_dir / "builds"
    builds.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(builds)], check=True)
    try:
        yield builds
    finally:
        subprocess.run(["umount", "-l", str(builds)], check=False)


def test_disk_full_during_a_build(
    node: Node, running_space: str, full_build_disk: Path, tmp_path: Path
) -> None:
    running = running_space
    serving = containers(running)[0]
    big = tmp_path / "big"
    shutil.copytree(ECHO, big)
    (big / "weights.bin").write_bytes(os.urandom(1024 * 1024))
    assert node.push(big, running, message="a commit too big for the disk").returncode == 0
    rt = wait_for(
        lambda: "disk is full" in ((r := node.runtime(running)).get("errorMessage") or "") and r,
        120,
    )
    assert "free space" in rt["errorMessage"]  # says what to do
    assert rt["stage"] == "RUNNING"  # the running version keeps serving
    assert [c.id for c in containers(running)] == [serving.id]
    assert app_text(node, running)[0] == 200

    subprocess.run(["umount", "-l", str(full_build_disk)], check=True)  # space freed
    assert node.push(big, running, message="the same, with space").returncode == 0
    head = hf(node).space_info(running).sha
    wait_for(lambda: any(c.labels.get(LABEL_COMMIT) == head for c in containers(running)), 180, 1)
    node.wait_stage(running, {"RUNNING"}, timeout=60)
    assert app_text(node, running)[0] == 200
