"""Tokens, and creating, moving and deleting Spaces with huggingface_hub, as a script would."""

from __future__ import annotations

import pytest
from huggingface_hub import HfApi
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

from tests.conftest import Node, unique
from tests.hf.conftest import User, make_static_space


def test_whoami_with_write_and_read_tokens(node: Node, api: HfApi, read_token: str) -> None:
    me = api.whoami()
    assert me["name"] == "admin" and me["type"] == "user"
    assert me["auth"]["accessToken"]["role"] == "write"
    assert HfApi(endpoint=node.url, token=read_token).whoami()["auth"]["accessToken"]["role"] == (
        "read"
    )


def test_bad_token_is_401(node: Node, api: HfApi, static_space: str) -> None:
    bad = HfApi(endpoint=node.url, token="sp_not_a_real_token")
    with pytest.raises(HfHubHTTPError) as err:
        bad.whoami()
    assert err.value.response.status_code == 401
    assert "Invalid user token" in str(err.value)
    with pytest.raises(HfHubHTTPError) as err:
        bad.space_info(static_space)
    assert err.value.response.status_code == 401


def test_read_token_reads_but_cannot_write(node: Node, read_token: str, static_space: str) -> None:
    reader = HfApi(endpoint=node.url, token=read_token)
    assert reader.space_info(static_space).id == static_space
    with pytest.raises(HfHubHTTPError) as err:
        reader.upload_file(
            path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=static_space, repo_type="space"
        )
    assert err.value.response.status_code == 403
    assert "read-only" in str(err.value)
    with pytest.raises(HfHubHTTPError) as err:
        reader.create_repo(f"admin/{unique('nope')}", repo_type="space", space_sdk="static")
    assert err.value.response.status_code == 403


def test_other_users_cannot_see_private_or_change_public(
    node: Node, api: HfApi, other_user: User, static_space: str
) -> None:
    private = make_static_space(api, unique("secret"), private=True)
    mallory = HfApi(endpoint=node.url, token=other_user.token)
    with pytest.raises(RepositoryNotFoundError):
        mallory.space_info(private)
    with pytest.raises(RepositoryNotFoundError):
        mallory.hf_hub_download(private, "index.html", repo_type="space")
    assert not mallory.repo_exists(private, repo_type="space")
    assert not HfApi(endpoint=node.url, token=False).repo_exists(private, repo_type="space")
    assert api.repo_exists(private, repo_type="space")

    assert mallory.space_info(static_space).id == static_space
    with pytest.raises(HfHubHTTPError) as err:
        mallory.delete_file("index.html", static_space, repo_type="space")
    assert err.value.response.status_code == 403
    with pytest.raises(HfHubHTTPError) as err:
        mallory.create_repo(f"admin/{unique('squat')}", repo_type="space", space_sdk="static")
    assert err.value.response.status_code == 403


def test_unknown_repo_is_repository_not_found(api: HfApi) -> None:
    with pytest.raises(RepositoryNotFoundError):
        api.space_info("admin/does-not-exist-at-all")
    with pytest.raises(RepositoryNotFoundError):
        api.list_repo_files("admin/does-not-exist-at-all", repo_type="space")


def test_create_repo_with_everything(node: Node, api: HfApi) -> None:
    repo_id = f"admin/{unique('full')}"
    url = api.create_repo(
        repo_id,
        repo_type="space",
        space_sdk="gradio",
        private=True,
        space_hardware="cpu-upgrade",  # type: ignore[arg-type]
        space_sleep_time=600,
        space_secrets=[{"key": "API_KEY", "value": "s3cret", "description": "a secret"}],
        space_variables=[{"key": "MODEL", "value": "tiny"}],
    )
    assert url.repo_id == repo_id and url.repo_type == "space"
    info = api.space_info(repo_id)
    assert info.private is True and info.sdk == "gradio"
    runtime = api.get_space_runtime(repo_id)
    assert runtime.requested_hardware == "cpu-upgrade"
    assert runtime.sleep_time == 600
    assert runtime.stage == "NO_APP_FILE"

    from sqlalchemy import select

    from spaceport.db.models import Space, SpaceVariable
    from spaceport.db.session import session_scope

    with session_scope() as session:
        space = session.scalars(select(Space).where(Space.name == repo_id.split("/")[1])).one()
        rows = {
            v.key: v
            for v in session.scalars(
                select(SpaceVariable).where(SpaceVariable.space_id == space.id)
            )
        }
    assert rows["MODEL"].value == "tiny" and not rows["MODEL"].is_secret
    assert rows["API_KEY"].is_secret and rows["API_KEY"].value is None
    assert rows["API_KEY"].encrypted_value and b"s3cret" not in rows["API_KEY"].encrypted_value

    # exist_ok: the client reads the url from our 409.
    again = api.create_repo(repo_id, repo_type="space", space_sdk="gradio", exist_ok=True)
    assert again.repo_id == repo_id
    with pytest.raises(HfHubHTTPError) as err:
        api.create_repo(repo_id, repo_type="space", space_sdk="gradio")
    assert err.value.response.status_code == 409
    assert "already created" in str(err.value)


def test_create_repo_refusals_say_why(api: HfApi) -> None:
    with pytest.raises(HfHubHTTPError, match="Spaces only"):
        api.create_repo(f"admin/{unique('model')}")
    with pytest.raises(HfHubHTTPError, match="unknown hardware 'tpu-v9'"):
        api.create_repo(
            f"admin/{unique('hw')}",
            repo_type="space",
            space_sdk="static",
            space_hardware="tpu-v9",  # type: ignore[arg-type]
        )
    typo = f"admin/{unique('typo')}"
    with pytest.raises(HfHubHTTPError, match="invalid key '1BAD'"):
        api.create_repo(
            typo,
            repo_type="space",
            space_sdk="static",
            space_variables=[{"key": "1BAD", "value": "x"}],
        )
    assert not api.repo_exists(typo, repo_type="space")  # nothing half-made


def test_move_and_delete_repo(node: Node, api: HfApi) -> None:
    repo_id = make_static_space(api, unique("mover"))
    new_id = f"admin/{unique('moved')}"
    api.move_repo(repo_id, new_id, repo_type="space")
    info = api.space_info(new_id)
    assert info.id == new_id
    assert "index.html" in {s.rfilename for s in info.siblings or []}
    assert info.host == node.app_url(new_id).rstrip("/")
    with pytest.raises(RepositoryNotFoundError):
        api.space_info(repo_id)
    # The moved repo still takes commits (and git pushes) under its new name.
    api.upload_file(
        path_or_fileobj=b"hi\n", path_in_repo="hi.txt", repo_id=new_id, repo_type="space"
    )
    assert api.file_exists(new_id, "hi.txt", repo_type="space")

    other = f"admin/{unique('taken')}"
    api.create_repo(other, repo_type="space", space_sdk="static")
    with pytest.raises(HfHubHTTPError) as err:
        api.move_repo(new_id, other, repo_type="space")
    assert err.value.response.status_code == 409

    # Deleted: a Space without builds (see tests/hf/conftest.py on deleting during builds).
    api.delete_repo(other, repo_type="space")
    assert not api.repo_exists(other, repo_type="space")
    assert not (node.settings.repos_dir / "admin" / f"{other.split('/')[1]}.git").exists()
    with pytest.raises(RepositoryNotFoundError):
        api.delete_repo(other, repo_type="space")
    api.delete_repo(other, repo_type="space", missing_ok=True)
