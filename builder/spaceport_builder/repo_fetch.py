"""The repository a build reads: the node's own, or on a build worker elsewhere (`spaceport worker
--builds-only`, which shares no disk with the control plane) a mirror fetched over git HTTP.

The mirror is a bare repository under the worker's cache, fetched incrementally (every branch,
so any commit a rebuild names is there) from `SPACEPORT_GIT_URL` (default `SPACEPORT_URL`) with
the admin token, which reads private Spaces too (the worker holds the database's credentials
and the secrets' key already). The token reaches git through its environment, never its argv.
Fetched objects are checked (`transfer.fsckObjects`) and the mirror runs no hooks.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

from spaceport.git.repos import GitError, git, repo_path
from spaceport.settings import Settings

FETCH_TIMEOUT_S = 600


class FetchError(GitError):
    """The repository could not be had here; says what to set or fix."""


HEADS = "+refs/heads/*:refs/heads/*"  # every branch: a rebuild may name an older commit


def mirrors_dir(settings: Settings) -> Path:
    return settings.data / "cache" / "repos"


def mirror_path(settings: Settings, owner: str, name: str) -> Path:
    return mirrors_dir(settings) / owner / f"{name}.git"


def mirror_lock(mirror: Path) -> Path:
    """The file whose lock a fetch into `mirror` holds (and its removal: worker_tidy.py)."""
    return mirror.parent / f".{mirror.name.removesuffix('.git')}.lock"


def remote_url(settings: Settings, owner: str, name: str) -> str:
    return f"{(settings.git_url or settings.url).rstrip('/')}/spaces/{owner}/{name}.git"


def repository_for(
    settings: Settings, owner: str, name: str, sha: str, log: Callable[[str], None]
) -> Path:
    """A bare repository that holds commit `sha` of the Space. Raises FetchError saying what to
    set when the commit cannot be had."""
    own = repo_path(settings, owner, name)
    if (own / "HEAD").exists():
        return own
    mirror, url = mirror_path(settings, owner, name), remote_url(settings, owner, name)
    mirror.parent.mkdir(parents=True, exist_ok=True)
    with open(mirror_lock(mirror), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two builds of one Space on this worker: one fetch
        if not (mirror / "HEAD").exists():
            try:
                git(mirror, "init", "--bare", "--quiet")
                git(mirror, "config", "transfer.fsckObjects", "true")
                git(mirror, "config", "core.hooksPath", "/dev/null")
            except GitError as exc:
                raise FetchError(str(exc)) from exc
        if not _has(mirror, sha):
            if not settings.admin_token:
                raise FetchError(
                    f"this worker has no copy of {owner}/{name}'s repository and no token to "
                    "fetch it: set SPACEPORT_ADMIN_TOKEN (and SPACEPORT_GIT_URL if the control "
                    f"plane is not reached at {settings.url})"
                )
            log("Fetching the repository from the control plane over git HTTP")
            _fetch(mirror, url, settings.admin_token)
        if not _has(mirror, sha):
            raise FetchError(f"commit {sha} is not in {owner}/{name}'s repository at {url}")
    return mirror


def _has(repo: Path, sha: str) -> bool:
    proc = subprocess.run(
        ["git", "--git-dir", str(repo), "cat-file", "-e", f"{sha}^{{commit}}"],
        capture_output=True,
        check=False,
    )
    return proc.returncode == 0


def _fetch(mirror: Path, url: str, token: str) -> None:
    env = {
        **os.environ,
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": "http.extraHeader",
        "GIT_CONFIG_VALUE_0": f"Authorization: Bearer {token}",
    }
    try:
        proc = subprocess.run(
            [
                "git",
                "--git-dir",
                str(mirror),
                "fetch",
                "--quiet",
                "--prune",
                "--no-tags",
                url,
                HEADS,
            ],
            env=env,
            capture_output=True,
            timeout=FETCH_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise FetchError(f"fetching {url} took over {FETCH_TIMEOUT_S} s") from exc
    if proc.returncode != 0:
        why = proc.stderr.decode(errors="replace").strip()[-500:]
        raise FetchError(f"could not fetch {url}: {why}")
