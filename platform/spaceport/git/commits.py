"""Write commits into a Space's bare repo with git plumbing: no working tree, no hooks.

The Hugging Face commit endpoint and `duplicate` land here. A commit is built on a throwaway
index (`GIT_INDEX_FILE`), and the branch moves with a compare-and-swap `update-ref`, so a
concurrent `git push` is never overwritten: the loser gets a clear conflict to retry.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from spaceport.errors import Conflict, SpaceportError
from spaceport.git.browse import EntryNotFound, RevisionNotFound, list_tree, resolve


class InvalidPath(SpaceportError):
    """A path in a commit that cannot be a file in a git repo."""


@dataclass(frozen=True)
class AddFile:
    """Put the bytes of local file `source` at `path` (replacing any file there)."""

    path: str
    source: Path


@dataclass(frozen=True)
class DeleteFile:
    path: str


@dataclass(frozen=True)
class DeleteFolder:
    path: str


Operation = AddFile | DeleteFile | DeleteFolder


@dataclass(frozen=True)
class Author:
    name: str
    email: str


def check_path(path: str) -> str:
    """A relative path inside the repo, or InvalidPath saying what is wrong with it."""
    clean = path.strip("/")
    parts = PurePosixPath(clean).parts if clean else ()
    if (
        not parts
        or "\0" in path
        or "\\" in path
        or any(p in (".", "..") or p.lower() == ".git" for p in parts)
        or "/".join(parts) != clean
    ):
        raise InvalidPath(
            f"invalid path in repo {path!r}: use a relative path like 'src/app.py', without "
            "'.', '..', '.git' or empty parts"
        )
    return clean


def _run(
    repo: Path, *args: str, env: dict[str, str] | None = None, input: bytes | None = None
) -> bytes:
    proc = subprocess.run(
        ["git", "--git-dir", str(repo), *args],
        input=input,
        capture_output=True,
        check=False,
        env={**os.environ, "GIT_CONFIG_NOSYSTEM": "1", **(env or {})},
    )
    if proc.returncode != 0:
        message = proc.stderr.decode(errors="replace").strip()
        raise SpaceportError(f"git {args[0]} failed: {message}")
    return proc.stdout


def _hash_files(repo: Path, sources: list[Path]) -> list[str]:
    """Store the files as blobs (one `hash-object` for all); their ids in order."""
    if not sources:
        return []
    paths = "\n".join(str(s) for s in sources).encode() + b"\n"
    out = _run(repo, "hash-object", "-w", "--no-filters", "--stdin-paths", input=paths)
    return out.decode().split()


def _apply(tree: dict[str, tuple[str, str]], ops: list[Operation], blobs: dict[Path, str]) -> None:
    """Apply operations in order to a {path: (mode, blob id)} map of every file."""
    for op in ops:
        path = check_path(op.path)
        if isinstance(op, AddFile):
            if any(p.startswith(path + "/") for p in tree):
                raise Conflict(f"cannot add file {path!r}: a folder of that name exists")
            for parent in PurePosixPath(path).parents:
                if str(parent) in tree:
                    raise Conflict(f"cannot add {path!r}: {str(parent)!r} is a file, not a folder")
            mode = tree.get(path, ("100644", ""))[0]
            tree[path] = (mode if mode in ("100644", "100755") else "100644", blobs[op.source])
        elif isinstance(op, DeleteFile):
            if path not in tree:
                raise EntryNotFound(f"A file with this name doesn't exist: {path!r}")
            del tree[path]
        else:
            doomed = [p for p in tree if p.startswith(path + "/")]
            if not doomed:
                raise EntryNotFound(f"A folder with this name doesn't exist: {path!r}")
            for p in doomed:
                del tree[p]


def commit_files(
    repo: Path,
    branch: str,
    ops: list[Operation],
    *,
    message: str,
    author: Author,
    parent_commit: str | None = None,
    max_files: int | None = None,
) -> str:
    """Commit `ops` on top of `branch` and move the branch; returns the new commit's id.

    `main` may not exist yet (a Space that was never pushed): the commit is then the first one.
    """
    ref = f"refs/heads/{branch}"
    head = resolve(repo, branch) if _run_ok(repo, "show-ref", "--verify", "--quiet", ref) else None
    if head is None and branch != "main":
        raise RevisionNotFound(f"Branch not found: {branch!r} (commits go to an existing branch)")
    if parent_commit and parent_commit != head:
        raise Conflict(
            f"parentCommit {parent_commit[:12]} is not the head of {branch} "
            f"({(head or 'empty')[:12]}): the Space changed meanwhile; fetch it and retry"
        )
    tree: dict[str, tuple[str, str]] = {}
    if head is not None:
        for e in list_tree(repo, head, recursive=True):
            if e.kind != "tree":
                tree[e.path] = (e.mode, e.oid)
    sources = list(dict.fromkeys(op.source for op in ops if isinstance(op, AddFile)))
    blobs = dict(zip(sources, _hash_files(repo, sources), strict=True))
    _apply(tree, ops, blobs)
    if max_files is not None and len(tree) > max_files:
        raise SpaceportError(
            f"the commit would leave {len(tree)} files in the Space; at most {max_files} are "
            "accepted (operator setting SPACEPORT_GIT_MAX_FILES): delete generated files"
        )

    with tempfile.TemporaryDirectory(prefix="spaceport-index-") as tmp:
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        _run(repo, "read-tree", "--empty", env=env)
        listing = b"".join(
            f"{mode} {oid}\t{path}".encode() + b"\0" for path, (mode, oid) in sorted(tree.items())
        )
        _run(repo, "update-index", "-z", "--index-info", env=env, input=listing)
        tree_id = _run(repo, "write-tree", env=env).decode().strip()
    who = {
        "GIT_AUTHOR_NAME": author.name,
        "GIT_AUTHOR_EMAIL": author.email,
        "GIT_COMMITTER_NAME": author.name,
        "GIT_COMMITTER_EMAIL": author.email,
    }
    parents = ["-p", head] if head else []
    sha = _run(repo, "commit-tree", tree_id, *parents, "-F", "-", env=who, input=message.encode())
    new = sha.decode().strip()
    # Compare-and-swap: fails if the branch moved since we read it (e.g. a concurrent push).
    if not _run_ok(repo, "update-ref", "-m", "commit (api)", ref, new, head or ""):
        raise Conflict(f"{branch} moved while committing (a concurrent push?): retry the commit")
    return new


def _run_ok(repo: Path, *args: str) -> bool:
    proc = subprocess.run(["git", "--git-dir", str(repo), *args], capture_output=True, check=False)
    return proc.returncode == 0


def copy_branches(source: Path, dest: Path) -> None:
    """Copy every branch and tag of `source` into the (new, empty) repo `dest`."""
    _run(
        dest,
        "fetch",
        "--quiet",
        "--no-tags",
        str(source),
        "+refs/heads/*:refs/heads/*",
        "+refs/tags/*:refs/tags/*",
    )


def ignored_paths(gitignore: str, paths: list[str]) -> set[str]:
    """Which of `paths` a `.gitignore` excludes, decided by git itself in a scratch repo."""
    if not gitignore.strip() or not paths:
        return set()
    with tempfile.TemporaryDirectory(prefix="spaceport-ignore-") as tmp:
        env = {**os.environ, "HOME": tmp, "GIT_CONFIG_NOSYSTEM": "1", "XDG_CONFIG_HOME": tmp}
        subprocess.run(["git", "init", "-q", tmp], check=True, env=env, capture_output=True)
        (Path(tmp) / ".gitignore").write_text(gitignore)
        proc = subprocess.run(
            ["git", "-C", tmp, "check-ignore", "--no-index", "--stdin", "-z"],
            input="\0".join(paths).encode(),
            capture_output=True,
            check=False,
            env=env,
        )
    return {p.decode() for p in proc.stdout.split(b"\0") if p}
