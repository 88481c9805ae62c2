"""Push the example Spaces with real git, as a user would (used by `make up` and tests).

Commits are made with fixed author, committer and dates, so the same example content always
gives the same commit: a second `make up` pushes nothing and rebuilds nothing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import urlparse, urlunparse

from spaceport.auth.tokens import issue_token
from spaceport.db.models import User
from spaceport.db.session import session_scope
from spaceport.services.spaces import create_space, find_space
from spaceport.settings import Settings

FIXED_DATE = "2026-01-01T00:00:00+00:00"
SKIP = {"gpu-torch", "gpu-nvml"}  # need a GPU host: not deployed by default


def git_env() -> dict[str, str]:
    return {
        **os.environ,
        "GIT_AUTHOR_NAME": "Spaceport",
        "GIT_AUTHOR_EMAIL": "examples@spaceport.invalid",
        "GIT_COMMITTER_NAME": "Spaceport",
        "GIT_COMMITTER_EMAIL": "examples@spaceport.invalid",
        "GIT_AUTHOR_DATE": FIXED_DATE,
        "GIT_COMMITTER_DATE": FIXED_DATE,
        "GIT_TERMINAL_PROMPT": "0",
    }


def remote_url(settings: Settings, space_id: str, token: str) -> str:
    parts = urlparse(settings.url)
    netloc = f"user:{token}@{parts.netloc}"
    return urlunparse(parts._replace(netloc=netloc, path=f"/spaces/{space_id}"))


def push_dir(settings: Settings, src: Path, space_id: str, token: str) -> str:
    """Commit the files of `src` and push them to the Space's main; returns git's output."""
    work = Path(tempfile.mkdtemp(prefix="spaceport-push-"))
    try:
        shutil.copytree(src, work, dirs_exist_ok=True)
        env = git_env()
        for argv in (
            ["git", "init", "-q", "-b", "main"],
            ["git", "add", "-A"],
            ["git", "commit", "-q", "-m", f"Deploy {src.name}"],
        ):
            subprocess.run(argv, cwd=work, env=env, check=True, capture_output=True)
        proc = subprocess.run(
            ["git", "push", "-f", remote_url(settings, space_id, token), "main:main"],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"git push to {space_id} failed: {proc.stderr.strip()}")
        return proc.stderr
    finally:
        shutil.rmtree(work, ignore_errors=True)


def push_examples(settings: Settings, examples: Path, say: object = print) -> dict[str, str]:
    """Create and push each example once; Spaces that already have commits are left alone."""
    apps: dict[str, str] = {}
    to_push: list[Path] = []
    sources = sorted(p for p in examples.iterdir() if (p / "README.md").exists())
    with session_scope() as session:
        admin = session.query(User).filter_by(name=settings.admin_user).one()
        token = issue_token(session, admin, "make up: example push", "write")
        for src in sources:
            if src.name in SKIP:
                continue
            apps[f"{admin.name}/{src.name}"] = settings.app_url(admin.name, src.name)
            space = find_space(session, admin.name, src.name)
            if space is None:
                space = create_space(session, settings, admin.name, src.name)
            if space.head_sha is None:
                to_push.append(src)
    for src in to_push:
        push_dir(settings, src, f"{settings.admin_user}/{src.name}", token)
        if callable(say):
            say(f"pushed example {src.name}")
    with session_scope() as session:  # the push token was for this run only
        from spaceport.auth.tokens import hash_token
        from spaceport.db.models import Token

        session.query(Token).filter_by(token_hash=hash_token(token)).delete()
    return apps
