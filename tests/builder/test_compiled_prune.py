"""The compiled stages kept on a node are the most recently *tagged* (compiled_deps.prune): a
stage BuildKit had cached keeps its first build's creation time, and pruning by that removed
a stage right after the warm task had tagged it (the next build then missed it)."""

from __future__ import annotations

import subprocess
import time
import uuid

from spaceport.settings import Settings
from spaceport_builder.compiled_deps import prune
from tests.conftest import docker_available, need


def test_prune_keeps_the_most_recently_tagged() -> None:
    need(docker_available(), "a Docker engine (dockerd)")
    repo = f"spaceport-test-prune-{uuid.uuid4().hex[:8]}"
    refs = [f"{repo}:{name}" for name in ("first", "second", "third")]
    try:
        for ref in refs:  # three images, created in this order
            empty = subprocess.run(
                ["tar", "cf", "-", "--files-from", "/dev/null"], capture_output=True
            )
            subprocess.run(
                ["docker", "import", "--change", f"LABEL ref={ref}", "-", ref],
                input=empty.stdout,
                capture_output=True,
                check=True,
            )
            time.sleep(1.1)
        # The oldest image is tagged again (as a warm build that BuildKit had cached is).
        subprocess.run(["docker", "tag", refs[0], refs[0]], check=True)
        assert prune(Settings(), keep=2, repo=repo) == [refs[1]]
        left = subprocess.run(
            ["docker", "images", repo, "--format", "{{.Repository}}:{{.Tag}}"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        assert sorted(left) == sorted([refs[0], refs[2]])
    finally:
        subprocess.run(["docker", "rmi", "-f", *refs], capture_output=True)
