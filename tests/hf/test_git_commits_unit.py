"""Commits written with plumbing into a real bare repo (no node needed): what `create_commit`
relies on, including its refusals."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from spaceport.errors import Conflict
from spaceport.git import browse
from spaceport.git.browse import EntryNotFound, RevisionNotFound
from spaceport.git.commits import (
    AddFile,
    Author,
    DeleteFile,
    DeleteFolder,
    InvalidPath,
    check_path,
    commit_files,
    ignored_paths,
)

ME = Author("alice", "alice@example.invalid")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "space.git"
    subprocess.run(["git", "init", "--bare", "-q", "--initial-branch=main", str(path)], check=True)
    return path


def blob(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def show(repo: Path, spec: str) -> str:
    out = subprocess.run(
        ["git", "--git-dir", str(repo), "show", spec], capture_output=True, text=True, check=True
    )
    return out.stdout


def test_first_commit_then_edits_and_deletions(repo: Path, tmp_path: Path) -> None:
    assert browse.is_empty(repo) and browse.require_revision(repo, "main") is None
    first = commit_files(
        repo,
        "main",
        [
            AddFile("README.md", blob(tmp_path, "r", b"# hi\n")),
            AddFile("src/app.py", blob(tmp_path, "a", b"print(1)\n")),
            AddFile("src/util/x.py", blob(tmp_path, "x", b"x\n")),
        ],
        message="first\n\nbody",
        author=ME,
    )
    assert browse.resolve(repo, "main") == first
    [c] = browse.log(repo, first)
    assert (c.title, c.message, c.author) == ("first", "body", "alice")

    second = commit_files(
        repo,
        "main",
        [DeleteFolder("src/util"), DeleteFile("README.md"), AddFile("src/app.py", tmp_path / "x")],
        message="second",
        author=ME,
        parent_commit=first,
    )
    assert [e.path for e in browse.files(repo, second)] == ["src/app.py"]
    assert show(repo, f"{second}:src/app.py") == "x\n"
    assert [c.oid for c in browse.log(repo, second)] == [second, first]


def test_refusals(repo: Path, tmp_path: Path) -> None:
    first = commit_files(
        repo, "main", [AddFile("a/b.txt", blob(tmp_path, "b", b"b"))], message="m", author=ME
    )
    with pytest.raises(EntryNotFound, match="doesn't exist"):
        commit_files(repo, "main", [DeleteFile("nope.txt")], message="m", author=ME)
    with pytest.raises(EntryNotFound):
        commit_files(repo, "main", [DeleteFolder("nope")], message="m", author=ME)
    with pytest.raises(Conflict, match="is a file"):
        commit_files(repo, "main", [AddFile("a/b.txt/c", tmp_path / "b")], message="m", author=ME)
    with pytest.raises(Conflict, match="folder of that name"):
        commit_files(repo, "main", [AddFile("a", tmp_path / "b")], message="m", author=ME)
    with pytest.raises(RevisionNotFound):
        commit_files(repo, "dev", [AddFile("c", tmp_path / "b")], message="m", author=ME)
    with pytest.raises(Conflict, match="parentCommit"):
        commit_files(
            repo,
            "main",
            [AddFile("c", tmp_path / "b")],
            message="m",
            author=ME,
            parent_commit="0" * 40,
        )
    with pytest.raises(Exception, match="at most 1 are accepted"):
        commit_files(
            repo, "main", [AddFile("c", tmp_path / "b")], message="m", author=ME, max_files=1
        )
    assert browse.resolve(repo, "main") == first  # nothing refused moved the branch


@pytest.mark.parametrize(
    "bad", ["", "/", "../x", "a/../b", ".git/config", "a/.GIT/x", "a//b", "./a", "a\\b"]
)
def test_invalid_paths(bad: str) -> None:
    with pytest.raises(InvalidPath):
        check_path(bad)


def test_check_path_accepts_normal_paths() -> None:
    assert check_path("/src/app.py") == "src/app.py"
    assert check_path(".gitignore") == ".gitignore"


def test_gitignore_is_decided_by_git() -> None:
    rules = "build/\n*.log\n!keep.log\n"
    paths = ["build/x.txt", "a.log", "keep.log", "src/build/y", "app.py"]
    assert ignored_paths(rules, paths) == {"build/x.txt", "a.log", "src/build/y"}
    assert ignored_paths("", paths) == set()
