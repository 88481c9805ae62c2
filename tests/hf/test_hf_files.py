"""Uploading and reading a Space's files with huggingface_hub: commits land in git like a push."""

from __future__ import annotations

from pathlib import Path

import pytest
from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi
from huggingface_hub.errors import HfHubHTTPError
from huggingface_hub.hf_api import RepoFile, RepoFolder

from tests.conftest import Node
from tests.hf.conftest import repo_head


def test_upload_file_commits_to_git_and_starts_a_build(
    node: Node, api: HfApi, static_space: str
) -> None:
    info = api.upload_file(
        path_or_fileobj=b"body { color: teal }\n",
        path_in_repo="style.css",
        repo_id=static_space,
        repo_type="space",
        commit_message="Add a stylesheet",
    )
    head = repo_head(node, static_space)
    assert info.oid == head
    assert info.commit_url.endswith(f"/spaces/{static_space}/commit/{head}")
    # The commit is a plain git commit: its tree holds the file, authored by the token's user.
    owner, name = static_space.split("/")
    repo = node.settings.repos_dir / owner / f"{name}.git"
    import subprocess

    show = subprocess.run(
        ["git", "--git-dir", str(repo), "show", f"{head}:style.css"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert show.stdout == "body { color: teal }\n"
    author = subprocess.run(
        ["git", "--git-dir", str(repo), "log", "-1", "--format=%an %s", head],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert author == "admin Add a stylesheet"
    # ... and, like a push to main, it started a build of exactly that commit.
    from sqlalchemy import select

    from spaceport.db.models import Build, Space
    from spaceport.db.session import session_scope

    with session_scope() as session:
        space = session.scalars(select(Space).where(Space.owner == owner, Space.name == name)).one()
        shas = [
            b.commit_sha for b in session.scalars(select(Build).where(Build.space_id == space.id))
        ]
        assert space.head_sha == head
    assert head in shas


def test_upload_folder_and_create_commit_with_deletions(
    node: Node, api: HfApi, static_space: str, tmp_path: Path
) -> None:
    folder = tmp_path / "site"
    (folder / "assets" / "img").mkdir(parents=True)
    (folder / "assets" / "app.js").write_text("console.log('hi')\n")
    (folder / "assets" / "img" / "dot.txt").write_text(".\n")
    (folder / "about.html").write_text("<p>about</p>\n")
    api.upload_folder(folder_path=folder, repo_id=static_space, repo_type="space")
    files = set(api.list_repo_files(static_space, repo_type="space"))
    assert {"assets/app.js", "assets/img/dot.txt", "about.html", "README.md"} <= files

    info = api.create_commit(
        static_space,
        operations=[
            CommitOperationDelete("about.html"),
            CommitOperationDelete("assets/img/", is_folder=True),
            CommitOperationAdd("notes/todo.md", b"- ship it\n"),
        ],
        commit_message="Reshuffle",
        repo_type="space",
    )
    assert info.oid == repo_head(node, static_space)
    files = set(api.list_repo_files(static_space, repo_type="space"))
    assert "about.html" not in files and "assets/img/dot.txt" not in files
    assert {"assets/app.js", "notes/todo.md"} <= files

    # Deleting a file that is not there: the client's EntryNotFound, with the server's reason.
    with pytest.raises(HfHubHTTPError) as err:
        api.delete_file("no/such/file.txt", static_space, repo_type="space")
    assert err.value.response.status_code == 404
    assert "doesn't exist" in str(err.value)


def test_unchanged_upload_makes_no_commit(node: Node, api: HfApi, static_space: str) -> None:
    before = repo_head(node, static_space)
    index = api.hf_hub_download(static_space, "index.html", repo_type="space")
    info = api.upload_file(
        path_or_fileobj=Path(index).read_bytes(),
        path_in_repo="index.html",
        repo_id=static_space,
        repo_type="space",
    )
    # preupload gave the blob id; the client saw nothing changed and asked /revision/main.
    assert info.oid == before == repo_head(node, static_space)


def test_tree_paths_info_download_and_exists(api: HfApi, static_space: str) -> None:
    api.upload_file(
        path_or_fileobj=b"x = 1\n",
        path_in_repo="pkg/mod.py",
        repo_id=static_space,
        repo_type="space",
    )
    root = {e.path: e for e in api.list_repo_tree(static_space, repo_type="space")}
    assert isinstance(root["pkg"], RepoFolder)
    index = root["index.html"]
    assert isinstance(index, RepoFile) and index.size == len(b"<h1>hello</h1>\n")
    inside = [e.path for e in api.list_repo_tree(static_space, "pkg", repo_type="space")]
    assert inside == ["pkg/mod.py"]
    deep = {e.path for e in api.list_repo_tree(static_space, recursive=True, repo_type="space")}
    assert {"pkg", "pkg/mod.py", "index.html"} <= deep

    infos = api.get_paths_info(
        static_space, ["index.html", "pkg", "missing.txt"], repo_type="space"
    )
    assert sorted(i.path for i in infos) == ["index.html", "pkg"]

    path = api.hf_hub_download(static_space, "pkg/mod.py", repo_type="space")
    assert Path(path).read_text() == "x = 1\n"
    assert api.file_exists(static_space, "pkg/mod.py", repo_type="space")
    assert not api.file_exists(static_space, "pkg/nope.py", repo_type="space")


def test_snapshot_download_and_refs(
    node: Node, api: HfApi, static_space: str, tmp_path: Path
) -> None:
    folder = api.snapshot_download(static_space, repo_type="space", local_dir=tmp_path / "snap")
    assert (Path(folder) / "index.html").read_text() == "<h1>hello</h1>\n"
    assert (Path(folder) / "README.md").is_file()
    refs = api.list_repo_refs(static_space, repo_type="space")
    assert [(b.name, b.target_commit) for b in refs.branches] == [
        ("main", repo_head(node, static_space))
    ]


def test_list_repo_commits(api: HfApi, static_space: str) -> None:
    api.upload_file(
        path_or_fileobj=b"v2\n",
        path_in_repo="VERSION",
        repo_id=static_space,
        repo_type="space",
        commit_message="Bump version",
        commit_description="Second release.",
    )
    commits = api.list_repo_commits(static_space, repo_type="space")
    assert commits[0].title == "Bump version"
    assert commits[0].message == "Second release."
    assert commits[0].authors == ["admin"]
    assert commits[-1].title == "Upload README.md with huggingface_hub"
    assert len({c.commit_id for c in commits}) == len(commits)


def test_too_large_file_gets_a_clear_error(api: HfApi, static_space: str) -> None:
    big = b"0" * (4 * 1024 * 1024)  # over the test node's 3 MB file limit
    with pytest.raises(HfHubHTTPError) as err:
        api.upload_file(
            path_or_fileobj=big, path_in_repo="big.bin", repo_id=static_space, repo_type="space"
        )
    assert err.value.response.status_code == 413
    assert "big.bin is 4.0 MB" in str(err.value) and "git" in str(err.value)


def test_gitignored_files_are_skipped(api: HfApi, static_space: str, tmp_path: Path) -> None:
    folder = tmp_path / "ignoring"
    folder.mkdir()
    (folder / ".gitignore").write_text("*.log\n")
    (folder / "debug.log").write_text("noise\n")
    (folder / "kept.txt").write_text("kept\n")
    api.upload_folder(folder_path=folder, repo_id=static_space, repo_type="space")
    files = set(api.list_repo_files(static_space, repo_type="space"))
    assert {".gitignore", "kept.txt"} <= files
    assert "debug.log" not in files


def test_invalid_readme_is_refused_before_upload(api: HfApi, static_space: str) -> None:
    with pytest.raises(ValueError, match="'sdk' must be one of"):
        api.upload_file(
            path_or_fileobj=b"---\nsdk: gradoi\n---\n",
            path_in_repo="README.md",
            repo_id=static_space,
            repo_type="space",
        )


def test_space_info_shape(node: Node, api: HfApi, static_space: str) -> None:
    info = api.space_info(static_space, files_metadata=True)
    owner, name = static_space.split("/")
    assert info.id == static_space and info.author == owner
    assert info.sdk == "static"
    assert info.sha == repo_head(node, static_space)
    assert info.card_data is not None and info.card_data.title == name
    assert info.card_data.tags == ["demo"]
    siblings = {s.rfilename: s for s in info.siblings or []}
    assert siblings["index.html"].size == len(b"<h1>hello</h1>\n")
    assert siblings["index.html"].blob_id
    assert info.host == node.app_url(static_space).rstrip("/")
    assert info.subdomain == node.settings.app_host(owner, name).split(".")[0]
    assert info.private is False
    assert info.last_modified is not None and info.created_at is not None
    assert info.runtime is not None and info.runtime.stage
    assert info.runtime.requested_hardware == "cpu-basic"

    first = api.list_repo_commits(static_space, repo_type="space")[-1].commit_id
    old = api.space_info(static_space, revision=first)
    assert old.sha == first
    assert [s.rfilename for s in old.siblings or []] == ["README.md"]
    assert api.revision_exists(static_space, first[:12], repo_type="space")
    assert not api.revision_exists(static_space, "no-such-branch", repo_type="space")
