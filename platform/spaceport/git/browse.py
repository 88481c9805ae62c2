"""Read a Space's bare repo without a working tree: revisions, trees, blobs and history.

The Hugging Face file endpoints (tree, paths-info, resolve, commits, space info) answer from
here. Only read-only plumbing runs (`rev-parse`, `ls-tree`, `cat-file`, `log`), with literal
pathspecs, so a user's path can never act as a pattern or an option.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path

from spaceport.errors import NotFound

_ENV = {**os.environ, "GIT_LITERAL_PATHSPECS": "1", "GIT_CONFIG_NOSYSTEM": "1"}


class RevisionNotFound(NotFound):
    """A branch, tag or commit that the repo does not have (huggingface_hub: RevisionNotFound)."""

    error_code = "RevisionNotFound"


class EntryNotFound(NotFound):
    """A file or folder that the revision does not have (huggingface_hub: EntryNotFound)."""

    error_code = "EntryNotFound"


@dataclass(frozen=True)
class TreeEntry:
    """One file (`blob`) or folder (`tree`) of a revision."""

    path: str
    kind: str  # "blob" | "tree" | "commit" (submodule)
    mode: str
    oid: str
    size: int

    @property
    def is_file(self) -> bool:
        return self.kind == "blob"


@dataclass(frozen=True)
class CommitEntry:
    oid: str
    author: str
    email: str
    date: datetime
    title: str
    message: str


def _git(repo: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["git", "--git-dir", str(repo), *args], capture_output=True, check=False, env=_ENV
    )


def resolve(repo: Path, revision: str) -> str | None:
    """The commit a branch, tag or (abbreviated) sha names; None when there is none."""
    if not revision or revision.startswith("-") or "\0" in revision:
        return None
    for candidate in (f"refs/heads/{revision}", f"refs/tags/{revision}", revision):
        out = _git(
            repo, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{candidate}^{{commit}}"
        )
        if out.returncode == 0:
            return out.stdout.decode().strip()
    return None


def is_empty(repo: Path) -> bool:
    """True for a repo without any commit yet (a Space that was created and never pushed)."""
    return _git(repo, "rev-parse", "--verify", "--quiet", "HEAD").returncode != 0


def require_revision(repo: Path, revision: str) -> str | None:
    """The commit of `revision`; None for `main` of an empty repo; else RevisionNotFound."""
    sha = resolve(repo, revision)
    if sha is None and not (revision == "main" and is_empty(repo)):
        raise RevisionNotFound(f"Revision not found: {revision!r}")
    return sha


def _parse_ls_tree(raw: bytes) -> Iterator[TreeEntry]:
    for record in raw.split(b"\0"):
        if not record:
            continue
        meta, _, path = record.partition(b"\t")
        mode, kind, oid, size = meta.decode().split(maxsplit=3)
        yield TreeEntry(
            path=path.decode("utf-8", "surrogateescape"),
            kind=kind,
            mode=mode,
            oid=oid,
            size=int(size) if size.strip() != "-" else 0,
        )


def list_tree(repo: Path, sha: str, path: str = "", *, recursive: bool = False) -> list[TreeEntry]:
    """Entries under folder `path` ("" = root); recursive lists sub-folders and their files."""
    args = ["ls-tree", "-l", "-z", "--full-tree"]
    if recursive:
        args += ["-r", "-t"]
    args.append(sha)
    folder = path.strip("/")
    if folder:
        entry = entry_at(repo, sha, folder)
        if entry is None or entry.kind != "tree":
            raise EntryNotFound(f"Folder not found in revision {sha[:12]}: {folder!r}")
        args += ["--", folder + "/"]
    out = _git(repo, *args)
    if out.returncode != 0:
        raise RevisionNotFound(f"Revision not found: {sha!r}")
    return list(_parse_ls_tree(out.stdout))


def entry_at(repo: Path, sha: str, path: str) -> TreeEntry | None:
    """The file or folder at exactly `path`, or None."""
    path = path.strip("/")
    if not path:
        return None
    out = _git(repo, "ls-tree", "-l", "-z", "--full-tree", sha, "--", path)
    if out.returncode != 0:
        return None
    return next((e for e in _parse_ls_tree(out.stdout) if e.path == path), None)


def files(repo: Path, sha: str | None) -> list[TreeEntry]:
    """Every file of a revision (recursive, no folders); [] for an empty repo."""
    if sha is None:
        return []
    return [e for e in list_tree(repo, sha, recursive=True) if e.is_file]


def read_blob(repo: Path, oid: str) -> bytes:
    out = _git(repo, "cat-file", "blob", oid)
    if out.returncode != 0:
        raise EntryNotFound(f"Blob not found: {oid}")
    return out.stdout


def stream_blob(repo: Path, oid: str, chunk: int = 1 << 16) -> Iterator[bytes]:
    """A blob's bytes in chunks, so a large file never sits in memory."""
    proc = subprocess.Popen(
        ["git", "--git-dir", str(repo), "cat-file", "blob", oid],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=_ENV,
    )
    assert proc.stdout is not None
    try:
        while data := proc.stdout.read(chunk):
            yield data
    finally:
        proc.stdout.close()
        proc.wait()


def read_text(repo: Path, sha: str | None, path: str) -> str | None:
    """A small text file of a revision (README.md), or None when absent or not UTF-8."""
    if sha is None:
        return None
    entry = entry_at(repo, sha, path)
    if entry is None or not entry.is_file:
        return None
    try:
        return read_blob(repo, entry.oid).decode("utf-8")
    except UnicodeDecodeError:
        return None


_LOG_FORMAT = "%H%x00%an%x00%ae%x00%cI%x00%s%x00%b%x1e"


def _parse_log(raw: bytes) -> list[CommitEntry]:
    commits = []
    for record in raw.decode("utf-8", "replace").split("\x1e"):
        record = record.strip("\n")
        if not record:
            continue
        oid, author, email, date, title, body = record.split("\x00", 5)
        commits.append(
            CommitEntry(
                oid=oid,
                author=author,
                email=email,
                date=datetime.fromisoformat(date).astimezone(UTC),
                title=title,
                message=body.strip(),
            )
        )
    return commits


def log(repo: Path, sha: str, *, skip: int = 0, limit: int = 50) -> list[CommitEntry]:
    """History from `sha`, newest first."""
    out = _git(repo, "log", f"--format={_LOG_FORMAT}", f"--skip={skip}", f"-n{limit}", sha, "--")
    if out.returncode != 0:
        raise RevisionNotFound(f"Revision not found: {sha!r}")
    return _parse_log(out.stdout)


def count_commits(repo: Path, sha: str) -> int:
    out = _git(repo, "rev-list", "--count", sha, "--")
    return int(out.stdout.decode().strip() or 0) if out.returncode == 0 else 0


@lru_cache(maxsize=4096)
def commit_time(repo: Path, sha: str) -> datetime | None:
    """When a commit was made; cached, since a commit's date never changes."""
    out = _git(repo, "show", "-s", "--format=%cI", sha, "--")
    if out.returncode != 0:
        return None
    return datetime.fromisoformat(out.stdout.decode().strip()).astimezone(UTC)


def refs(repo: Path) -> list[tuple[str, str]]:
    """Every branch and tag as (full ref name, commit id)."""
    out = _git(
        repo,
        "for-each-ref",
        "--format=%(refname)%00%(*objectname)%00%(objectname)",
        "refs/heads",
        "refs/tags",
    )
    found = []
    for line in out.stdout.decode().splitlines():
        name, peeled, oid = line.split("\0")
        found.append((name, peeled or oid))  # an annotated tag points at its commit
    return found
