"""A build as its owner sees it: the log streamed live (and replayed to late joiners), a
code-only push that reuses every dependency layer, and failures that say what to fix."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path

import pytest

from tests.builder.helpers import (
    LogReader,
    builds,
    clean_later,
    head_sha,
    variant,
    wait_builds,
    wait_deployed,
)
from tests.conftest import Node, unique

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def space_ids() -> Iterator[list[str]]:
    ids: list[str] = []
    yield ids
    clean_later(ids)


def test_build_log_streams_live_then_replays_and_code_push_reuses_dependencies(
    node: Node, tmp_path: Path, space_ids: list[str]
) -> None:
    """On the FastAPI Docker example (quick to start; the Gradio path is test_sdks.py's)."""
    space_id = node.create_space(unique("flow"), sdk="docker")
    space_ids.append(space_id)
    # A dependency set of its own (a unique comment), so the first build must install it.
    requirements = f"# {uuid.uuid4().hex}\nfastapi\nuvicorn\n"
    src = variant(tmp_path, "docker-fastapi", **{"requirements.txt": requirements})
    assert node.push(src, space_id).returncode == 0
    [first] = wait_builds(space_id, 1)

    reader = LogReader(node, space_id).start()  # joins while the build is queued or running
    reader.wait_for("uv pip install")
    assert reader.done.wait(120), "the stream did not end with the build"
    lines = reader.lines()
    assert lines[0] == f"Building {space_id} at {first.commit_sha[:12]}"
    assert lines[-1].startswith("Built spaceport/space-") and "dependencies built" in lines[-1]
    # Hugging Face's shape: `data: {"timestamp": ..., "data": ...}` per line.
    assert all(set(event) == {"timestamp", "data"} for _, event in reader.events)
    assert all(
        line.startswith("data: {") for line in reader.raw_lines if line and not line.startswith(":")
    )
    # Live: lines arrived while the build was still running, not all at its end.
    [first] = builds(space_id)
    finished = first.finished_at.replace(tzinfo=UTC).timestamp()
    assert reader.events[0][0] < finished - 0.5, (reader.events[0][0], finished)
    assert first.cache_report["dependencies_cached"] is False

    # A late joiner gets the whole log from the start.
    late = LogReader(node, space_id).start()
    assert late.done.wait(30)
    assert late.lines() == lines

    node.wait_stage(space_id, {"RUNNING"}, sha=first.commit_sha)
    app = variant(tmp_path, "docker-fastapi", **{"requirements.txt": requirements})
    main = (app / "main.py").read_text().replace("from a Docker Space", "from version 2")
    (app / "main.py").write_text(main)
    assert node.push(app, space_id).returncode == 0
    report = wait_deployed(node, space_id).cache_report
    assert report["dependencies_cached"] is True, report
    assert any("uv pip install" in step for step in report["cached"])
    assert report["built"] == ["COPY --chown=1000:1000 . ."]
    assert node.app_get(space_id, "/").json()["message"] == "Hello from version 2"


def test_failed_build_names_the_step_and_shows_its_last_lines(
    node: Node, tmp_path: Path, space_ids: list[str]
) -> None:
    space_id = node.create_space(unique("broken"))
    space_ids.append(space_id)
    bad = "this-package-does-not-exist-spaceport==9.9.9\n"
    assert (
        node.push(
            variant(tmp_path, "gradio-hello", **{"requirements.txt": bad}), space_id
        ).returncode
        == 0
    )
    rt, _ = node.wait_stage(space_id, {"BUILD_ERROR"}, timeout=120)
    message = rt["errorMessage"]
    assert message.startswith("Build failed at step `RUN --mount=type=cache"), message
    assert "exit code: 1" in message
    assert "--- last log lines ---" in message
    assert "this-package-does-not-exist-spaceport" in message.split("--- last log lines ---")[1]


def test_missing_app_file_and_unknown_base_image(
    node: Node, tmp_path: Path, space_ids: list[str]
) -> None:
    space_id = node.create_space(unique("noapp"))
    space_ids.append(space_id)
    src = variant(tmp_path, "gradio-hello")
    (src / "app.py").rename(src / "main.py")
    assert node.push(src, space_id).returncode == 0
    rt, _ = node.wait_stage(space_id, {"NO_APP_FILE"}, timeout=60, sha=head_sha(node, space_id))
    assert "app file 'app.py' not found in the repo" in rt["errorMessage"]

    docker_id = node.create_space(unique("nobase"), sdk="docker")
    space_ids.append(docker_id)
    src = variant(tmp_path, "docker-fastapi", Dockerfile="FROM python:3.11-slim\nRUN true\n")
    assert node.push(src, docker_id).returncode == 0
    rt, _ = node.wait_stage(docker_id, {"BUILD_ERROR"}, timeout=120)
    assert "load metadata for docker.io/library/python:3.11-slim" in rt["errorMessage"]
    assert "Base the Dockerfile on an image the node has" in rt["errorMessage"]
