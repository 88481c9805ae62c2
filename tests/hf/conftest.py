"""The real huggingface_hub client pointed at a live Spaceport node.

Every test here drives `HfApi(endpoint=node.url, token=...)` (or the `hf` CLI, or gradio_client)
exactly as a user's script would; nothing is mocked.
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from huggingface_hub import HfApi

from tests.conftest import ROOT, Node, unique

STATIC_README = """---
title: {title}
emoji: 🧪
colorFrom: blue
colorTo: green
sdk: static
pinned: false
short_description: a test Space
tags:
  - demo
---

# {title}
"""


@dataclass(frozen=True)
class User:
    name: str
    token: str


@pytest.fixture(scope="session")
def api(node: Node) -> HfApi:
    return HfApi(endpoint=node.url, token=node.token)


def issue_token(user_name: str, role: str) -> str:
    """A new token for an existing user (the console/CLI issue will expose this)."""
    from sqlalchemy import select

    from spaceport.auth.tokens import issue_token as issue
    from spaceport.db.models import User as UserRow
    from spaceport.db.session import session_scope

    with session_scope() as session:
        user = session.scalars(select(UserRow).where(UserRow.name == user_name)).one()
        return issue(session, user, f"test {role}", role)


@pytest.fixture(scope="session")
def read_token(node: Node) -> str:
    """A read-only token of the admin (who owns the test Spaces)."""
    return issue_token("admin", "read")


@pytest.fixture(scope="session")
def other_user(node: Node) -> User:
    from spaceport.db.session import session_scope
    from spaceport.services.users import create_user

    name = unique("mallory")
    with session_scope() as session:
        _, token = create_user(session, name)
    return User(name, token)


def make_static_space(api: HfApi, name: str, *, private: bool = False) -> str:
    """A static Space with a README and an index.html, committed through the client."""
    repo_id = f"admin/{name}"
    api.create_repo(repo_id, repo_type="space", space_sdk="static", private=private)
    api.upload_file(
        path_or_fileobj=STATIC_README.format(title=name).encode(),
        path_in_repo="README.md",
        repo_id=repo_id,
        repo_type="space",
    )
    api.upload_file(
        path_or_fileobj=b"<h1>hello</h1>\n",
        path_in_repo="index.html",
        repo_id=repo_id,
        repo_type="space",
    )
    return repo_id


@pytest.fixture(scope="module")
def static_space(api: HfApi) -> str:
    """A static Space shared by a module's tests.

    Spaces are left in place (the node's data dir goes with the session): deleting a Space
    whose build is still queued lets SQLite hand that build's id to the next build, and the
    stale queued task then disturbs it (reported; a schema fix belongs to the models)."""
    return make_static_space(api, unique("hfstatic"))


def wait_running(api: HfApi, repo_id: str, timeout: float = 300) -> None:
    """Poll the runtime (as gradio_client does) until the app runs; fail on an error stage."""
    deadline = time.monotonic() + timeout
    stage = ""
    while time.monotonic() < deadline:
        runtime = api.get_space_runtime(repo_id)
        stage = runtime.stage
        if stage == "RUNNING":
            return
        assert "ERROR" not in stage, f"{repo_id}: {stage}: {runtime.raw.get('errorMessage')}"
        time.sleep(0.5)
    raise AssertionError(f"{repo_id} never reached RUNNING (last stage {stage})")


def repo_head(node: Node, repo_id: str, ref: str = "main") -> str:
    """The commit `ref` points at in the Space's bare repo on disk (what a push would show)."""
    owner, name = repo_id.split("/")
    repo = node.settings.repos_dir / owner / f"{name}.git"
    return subprocess.run(
        ["git", "--git-dir", str(repo), "rev-parse", ref],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def client_env(node: Node, token: str | None, home: Path) -> dict[str, str]:
    """Environment for the `hf` CLI or gradio_client in a subprocess: HF_ENDPOINT at the node."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_"))}
    env |= {
        "HF_ENDPOINT": node.url,
        "HF_HOME": str(home),
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "GRADIO_ANALYTICS_ENABLED": "False",
        "PYTHONPATH": str(ROOT),
    }
    if token:
        env["HF_TOKEN"] = token
    return env
