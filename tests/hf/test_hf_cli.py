"""The `hf` CLI that ships with huggingface_hub, pointed at Spaceport with HF_ENDPOINT."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from huggingface_hub import HfApi

from tests.conftest import Node, unique
from tests.hf.conftest import client_env, repo_head

HF = str(Path(sys.executable).with_name("hf"))


def hf(node: Node, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [HF, *args],
        env=client_env(node, node.token, tmp_path / "hf-home"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_hf_cli_whoami_create_upload_download(node: Node, api: HfApi, tmp_path: Path) -> None:
    who = hf(node, tmp_path, "auth", "whoami")
    assert who.returncode == 0, who.stderr
    assert "admin" in who.stdout

    repo_id = f"admin/{unique('cli')}"
    created = hf(node, tmp_path, "repos", "create", repo_id, "--type", "space", "--sdk", "static")
    assert created.returncode == 0, created.stderr
    assert f"/spaces/{repo_id}" in created.stdout
    assert api.space_info(repo_id).sdk == "static"

    site = tmp_path / "site"
    site.mkdir()
    (site / "README.md").write_text("---\nsdk: static\ntitle: From the CLI\n---\n")
    (site / "index.html").write_text("<h1>cli</h1>\n")
    up = hf(node, tmp_path, "upload", repo_id, str(site), ".", "--repo-type", "space")
    assert up.returncode == 0, up.stderr
    assert sorted(api.list_repo_files(repo_id, repo_type="space")) == ["README.md", "index.html"]
    assert api.space_info(repo_id).sha == repo_head(node, repo_id)

    one = tmp_path / "extra.txt"
    one.write_text("extra\n")
    up = hf(node, tmp_path, "upload", repo_id, str(one), "docs/extra.txt", "--repo-type", "space")
    assert up.returncode == 0, up.stderr

    down = hf(
        node,
        tmp_path,
        "download",
        repo_id,
        "docs/extra.txt",
        "--repo-type",
        "space",
        "--local-dir",
        str(tmp_path / "out"),
    )
    assert down.returncode == 0, down.stderr
    assert (tmp_path / "out" / "docs" / "extra.txt").read_text() == "extra\n"

    missing = hf(node, tmp_path, "repos", "create", repo_id, "--type", "space", "--sdk", "static")
    assert missing.returncode != 0
    assert "already created" in missing.stdout + missing.stderr
