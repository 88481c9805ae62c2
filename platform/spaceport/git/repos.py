"""Bare repositories: one per Space, created hardened (fsck on receive, push size limit).

Only plumbing commands run against user repos: no hooks of theirs, no submodules, no clones.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from spaceport.settings import Settings

MAIN = "refs/heads/main"
# Config applied to every repo: refuse corrupt objects, cap a push, allow pushes over HTTP.
REPO_CONFIG = {
    "http.receivepack": "true",
    "receive.fsckObjects": "true",
    "receive.denyNonFastForwards": "false",
    "receive.maxInputSize": None,  # filled from settings
    "core.hooksPath": None,  # the platform's hooks dir, never the user's
    "uploadpack.allowFilter": "true",
}


class GitError(RuntimeError):
    pass


def repo_path(settings: Settings, owner: str, name: str) -> Path:
    return settings.repos_dir / owner / f"{name}.git"


def git(repo: Path, *args: str, input: bytes | None = None) -> bytes:
    proc = subprocess.run(
        ["git", "--git-dir", str(repo), *args], input=input, capture_output=True, check=False
    )
    if proc.returncode != 0:
        raise GitError(proc.stderr.decode(errors="replace").strip() or f"git {args[0]} failed")
    return proc.stdout


def init_repo(settings: Settings, owner: str, name: str, max_push_bytes: int) -> Path:
    path = repo_path(settings, owner, name)
    if not (path / "HEAD").exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["git", "init", "--bare", "--quiet", "--initial-branch=main", str(path)], check=True
        )
    values = {
        "receive.maxInputSize": str(max_push_bytes),
        "core.hooksPath": str(hooks_dir(settings)),
    }
    for key, value in REPO_CONFIG.items():
        git(path, "config", key, values[key] if value is None else value)
    return path


def hooks_dir(settings: Settings) -> Path:
    """The node's hooks: a pre-receive that runs spaceport.git.pre_receive with this Python."""
    path = settings.data / "git-hooks"
    hook = path / "pre-receive"
    script = f"#!/bin/sh\nexec {shlex.quote(sys.executable)} -m spaceport.git.pre_receive\n"
    if not hook.exists() or hook.read_text() != script:
        path.mkdir(parents=True, exist_ok=True)
        hook.write_text(script)
        hook.chmod(0o755)
    return path


def delete_repo(settings: Settings, owner: str, name: str) -> None:
    shutil.rmtree(repo_path(settings, owner, name), ignore_errors=True)


def head_sha(repo: Path, ref: str = MAIN) -> str | None:
    try:
        return git(repo, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}").decode().strip()
    except GitError:
        return None


def read_file(repo: Path, sha: str, path: str) -> bytes | None:
    try:
        return git(repo, "show", f"{sha}:{path}")
    except GitError:
        return None


def export_tree(repo: Path, sha: str, dest: Path) -> None:
    """Write the files of commit `sha` into `dest` (git archive: no hooks, no submodules)."""
    dest.mkdir(parents=True, exist_ok=True)
    archive = subprocess.Popen(
        ["git", "--git-dir", str(repo), "archive", "--format=tar", sha], stdout=subprocess.PIPE
    )
    untar = subprocess.run(
        ["tar", "-x", "--no-same-owner", "--no-same-permissions", "-C", str(dest)],
        stdin=archive.stdout,
        capture_output=True,
        check=False,
    )
    if archive.stdout:
        archive.stdout.close()
    if archive.wait() != 0 or untar.returncode != 0:
        raise GitError(f"could not export commit {sha}: {untar.stderr.decode(errors='replace')}")
