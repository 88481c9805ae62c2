"""Helpers shared by the builder's end-to-end tests: builds as the database records them,
the build log as a client reads it, and pushing small variations of the examples."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import EXAMPLES, Node


@dataclass
class BuildRow:
    id: int
    commit_sha: str
    status: str
    error_message: str | None
    cache_report: dict[str, Any]
    started_at: Any
    finished_at: Any
    image: str | None = None


def builds(space_id: str) -> list[BuildRow]:
    """The Space's builds, oldest first (the node's database, read like an operator would)."""
    from sqlalchemy import select

    from spaceport.db.models import Build, Space
    from spaceport.db.session import session_scope

    owner, name = space_id.split("/")
    with session_scope() as session:
        space = session.scalar(select(Space).where(Space.owner == owner, Space.name == name))
        assert space is not None
        rows = session.scalars(select(Build).where(Build.space_id == space.id).order_by(Build.id))
        return [
            BuildRow(
                b.id,
                b.commit_sha,
                b.status,
                b.error_message,
                dict(b.cache_report or {}),
                b.started_at,
                b.finished_at,
                b.image,
            )
            for b in rows
        ]


def wait_builds(space_id: str, count: int, timeout: float = 60) -> list[BuildRow]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = builds(space_id)
        if len(rows) >= count:
            return rows
        time.sleep(0.2)
    raise AssertionError(f"{space_id}: fewer than {count} builds after {timeout}s")


@dataclass
class LogReader:
    """Reads `/logs/build` in a thread, like `curl -N`: each event with when it arrived."""

    node: Node
    space_id: str
    events: list[tuple[float, dict[str, str]]] = field(default_factory=list)
    raw_lines: list[str] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)
    error: Exception | None = None

    def start(self) -> LogReader:
        threading.Thread(target=self._read, daemon=True).start()
        return self

    def _read(self) -> None:
        url = f"{self.node.url}/api/spaces/{self.space_id}/logs/build"
        headers = {"Authorization": f"Bearer {self.node.token}"}
        try:
            for attempt in range(3):  # EventSource reconnects when it got nothing at all
                try:
                    with httpx.stream("GET", url, headers=headers, timeout=120) as resp:
                        for line in resp.iter_lines():
                            self.raw_lines.append(line)
                            if line.startswith("data:"):
                                self.events.append((time.time(), json.loads(line[5:].strip())))
                    return
                except httpx.HTTPError as exc:
                    self.error = exc
                    if self.raw_lines or attempt == 2:
                        return
                    time.sleep(0.5)
        finally:
            self.done.set()

    def lines(self) -> list[str]:
        return [event["data"] for _, event in self.events]

    def wait_for(self, text: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(text in line for line in self.lines()):
                return
            if self.done.is_set():
                break
            time.sleep(0.1)
        raise AssertionError(f"{text!r} not in the build log: {self.lines()[-20:]}")


def variant(tmp: Path, example: str, **files: str) -> Path:
    """A copy of an example with some files replaced (name -> content)."""
    src = tmp / f"{example}-{len(list(tmp.iterdir()))}"
    shutil.copytree(EXAMPLES / example, src)
    for name, content in files.items():
        (src / name).write_text(content)
    return src


def head_sha(node: Node, space_id: str) -> str:
    owner, name = space_id.split("/")
    repo = node.settings.repos_dir / owner / f"{name}.git"
    return subprocess.run(
        ["git", "--git-dir", str(repo), "rev-parse", "main"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def processes() -> str:
    return subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout


def wait_gone(text: str, timeout: float = 15) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text not in processes():
            return True
        time.sleep(0.2)
    return False


# Spaces whose images go when the session ends (tests/builder/conftest.py).
SPACES_TO_CLEAN: list[str] = []


def clean_later(space_ids: list[str]) -> None:
    """Remove these Spaces' images at the end of the session, once their containers stopped."""
    SPACES_TO_CLEAN.extend(space_ids)


def remove_space_images(space_ids: list[str]) -> None:
    """Remove the images these Spaces built (never anyone else's)."""
    for space_id in space_ids:
        out = subprocess.run(
            ["docker", "images", "-q", "--filter", f"label=org.spaceport.space={space_id}"],
            capture_output=True,
            text=True,
        ).stdout.split()
        if out:
            subprocess.run(["docker", "rmi", "-f", *set(out)], capture_output=True)


def wait_deployed(node: Node, space_id: str, timeout: float = 180) -> BuildRow:
    """Wait until the build of the head commit finished and the Space is RUNNING again.

    The runtime's `sha` is the repo's head (as on Hugging Face), not the version serving, so
    "RUNNING at the new sha" alone can still be the previous version right after a push.
    """
    sha = head_sha(node, space_id)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = [b for b in builds(space_id) if b.commit_sha == sha and b.status != "queued"]
        if done and done[-1].status != "running":
            assert done[-1].status == "succeeded", done[-1]
            node.wait_stage(space_id, {"RUNNING"}, timeout=max(1, deadline - time.monotonic()))
            _previous_version_stopped(node, space_id, sha)
            return done[-1]
        time.sleep(0.2)
    raise AssertionError(f"{space_id}: the build of {sha[:12]} did not finish in {timeout}s")


def _previous_version_stopped(node: Node, space_id: str, sha: str) -> None:
    """The version before drains for `drain_s` after the switch, then stops. Its network
    interface leaving this host makes a browser here abort its requests
    (net::ERR_NETWORK_CHANGED), so tests start once it is gone. Bounded: a version that failed
    to start leaves the previous one serving."""
    from spaceport.engine.base import LABEL_COMMIT
    from tests.runtime.helpers import containers

    deadline = time.monotonic() + node.settings.drain_s + 15
    while time.monotonic() < deadline:
        if all(
            c.labels.get(LABEL_COMMIT, "") in (sha, "") for c in containers(space_id)
        ):  # none: a standby
            return
        time.sleep(0.2)
