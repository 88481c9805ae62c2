"""Pushes that break the node's limits are refused during the push, with a message that says
what to fix, and leave the repository (and the running app) exactly as they were."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import Node, unique


def repo_head(node: Node, space_id: str) -> str | None:
    owner, name = space_id.split("/")
    proc = subprocess.run(
        [
            "git",
            "--git-dir",
            str(node.settings.repos_dir / owner / f"{name}.git"),
            "rev-parse",
            "--verify",
            "--quiet",
            "main",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    return proc.stdout.strip() or None


def static_site(tmp: Path) -> Path:
    src = tmp / "site"
    src.mkdir(parents=True)
    (src / "README.md").write_text("---\nsdk: static\n---\n")
    (src / "index.html").write_text("<h1>ok</h1>")
    return src


@pytest.fixture(scope="module")
def space(node: Node) -> str:
    return node.create_space(unique("limits"), sdk="static")


def test_oversize_file_refused_and_repo_unchanged(node: Node, space: str, tmp_path: Path) -> None:
    src = static_site(tmp_path)
    assert node.push(src, space).returncode == 0
    before = repo_head(node, space)
    big = static_site(tmp_path / "big")
    limit = node.settings.git_max_file_bytes
    (big / "weights.bin").write_bytes(os.urandom(1024) * (limit // 1024 + 10))
    push = node.push(big, space)
    assert push.returncode != 0
    assert "weights.bin is" in push.stderr and "not accepted" in push.stderr, push.stderr
    assert repo_head(node, space) == before


def test_symlink_out_of_repo_refused(node: Node, space: str, tmp_path: Path) -> None:
    before = repo_head(node, space)
    src = static_site(tmp_path)
    (src / "passwd").symlink_to("/etc/passwd")
    (src / "up").symlink_to("../../secret")
    push = node.push(src, space)
    assert push.returncode != 0
    assert "passwd is a symlink to '/etc/passwd', outside the repository" in push.stderr
    assert "up is a symlink" in push.stderr
    assert repo_head(node, space) == before


def test_too_many_files_refused(node: Node, space: str, tmp_path: Path) -> None:
    before = repo_head(node, space)
    src = static_site(tmp_path)
    many = src / "many"
    many.mkdir()
    for i in range(node.settings.git_max_files + 1):
        (many / f"{i}.txt").write_text("")
    push = node.push(src, space)
    assert push.returncode != 0
    assert f"at most {node.settings.git_max_files} are accepted" in push.stderr, push.stderr
    assert repo_head(node, space) == before


def test_pack_over_push_size_limit_refused(node: Node, space: str, tmp_path: Path) -> None:
    owner, name = space.split("/")
    repo = node.settings.repos_dir / owner / f"{name}.git"
    before = repo_head(node, space)
    subprocess.run(
        ["git", "--git-dir", str(repo), "config", "receive.maxInputSize", "200000"], check=True
    )
    try:
        src = static_site(tmp_path)
        (src / "noise.bin").write_bytes(os.urandom(400_000))
        push = node.push(src, space)
        assert push.returncode != 0
        assert "pack exceeds maximum allowed size" in push.stderr, push.stderr
        assert repo_head(node, space) == before
    finally:
        subprocess.run(
            [
                "git",
                "--git-dir",
                str(repo),
                "config",
                "receive.maxInputSize",
                str(node.settings.git_max_push_bytes),
            ],
            check=True,
        )
