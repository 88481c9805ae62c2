"""Listing, duplicating and re-configuring Spaces with huggingface_hub."""

from __future__ import annotations

import httpx
import pytest
from huggingface_hub import HfApi
from huggingface_hub.utils import build_hf_headers, paginate

from tests.conftest import Node, unique
from tests.hf.conftest import User, make_static_space


@pytest.fixture(scope="module")
def listed(api: HfApi) -> list[str]:
    """Three Spaces sharing a unique word, created in order."""
    word = unique("lst")
    return [make_static_space(api, f"{word}-{i}") for i in range(3)]


def test_list_spaces_search_sort_limit(api: HfApi, listed: list[str]) -> None:
    word = listed[0].split("/")[1].rsplit("-", 1)[0]
    found = [s.id for s in api.list_spaces(search=word, sort="created_at")]
    assert found == listed[::-1]  # newest first, like the Hub
    assert [s.id for s in api.list_spaces(search=word, limit=2, sort="created_at")] == listed[:0:-1]
    first = next(iter(api.list_spaces(author="admin", search=word)))
    assert first.author == "admin" and first.sdk == "static" and first.runtime is not None
    assert first.card_data is not None and first.last_modified is not None
    assert [s.id for s in api.list_spaces(author="nobody-here", search=word)] == []
    assert sorted(s.id for s in api.list_spaces(search=word, filter="demo")) == sorted(listed)
    assert list(api.list_spaces(search=word, filter="gradio")) == []
    by_modified = [s.id for s in api.list_spaces(search=word, sort="last_modified")]
    assert sorted(by_modified) == sorted(listed)


def test_list_spaces_pages_with_link_header(node: Node, listed: list[str]) -> None:
    """The client's own paginator follows our `Link: rel="next"` across pages of one."""
    word = listed[0].split("/")[1].rsplit("-", 1)[0]
    items = list(
        paginate(
            f"{node.url}/api/spaces",
            params={"search": word, "limit": 1, "sort": "createdAt", "direction": 1},
            headers=build_hf_headers(token=node.token),
        )
    )
    assert [i["id"] for i in items] == listed


def test_list_spaces_returns_every_space_across_pages(node: Node, api: HfApi) -> None:
    """Pages hold 3 Spaces on the test node (SPACEPORT_LIST_PAGE_MAX): the client follows
    `Link` to the end, in the database's order or (tags) its own, and sees each Space once."""
    from sqlalchemy import func, select

    from spaceport.db.models import Space
    from spaceport.db.session import session_scope

    word = unique("pg")
    made = [node.create_space(f"{word}-{i}", sdk="static") for i in range(7)]  # rows: no build
    assert [s.id for s in api.list_spaces(search=word)] == made[::-1]
    assert [s.id for s in api.list_spaces(search=word, limit=5)] == made[:1:-1]
    assert [s.id for s in api.list_spaces(search=word, filter="static")] == made[::-1]
    everything = [s.id for s in api.list_spaces()]
    with session_scope() as session:
        count = session.scalar(select(func.count(Space.id)))
    assert len(set(everything)) == len(everything) == count and set(made) <= set(everything)


@pytest.mark.parametrize("direction", [-1, 1])
def test_list_cursor_survives_a_space_created_between_pages(node: Node, direction: int) -> None:
    """A Space created after the first page neither repeats nor hides one of the pages after
    (an offset would: newest first, every item moves one place down)."""
    word = unique("cur")
    made = [node.create_space(f"{word}-{i}", sdk="static") for i in range(5)]
    headers = build_hf_headers(token=node.token)
    params = {"search": word, "direction": direction}
    first = httpx.get(f"{node.url}/api/spaces", params=params, headers=headers)
    first.raise_for_status()
    newest = node.create_space(f"{word}-9", sdk="static")
    seen, url = [i["id"] for i in first.json()], first.links["next"]["url"]
    while url:  # as huggingface_hub's paginator: GET the next link as it is
        r = httpx.get(url, headers=headers)
        r.raise_for_status()
        seen += [i["id"] for i in r.json()]
        url = r.links.get("next", {}).get("url")
    assert seen == (made[::-1] if direction < 0 else [*made, newest])


def test_private_spaces_are_listed_only_for_their_owner(
    node: Node, api: HfApi, other_user: User
) -> None:
    private = make_static_space(api, unique("hidden"), private=True)
    name = private.split("/")[1]
    assert [s.id for s in api.list_spaces(search=name)] == [private]
    assert list(HfApi(endpoint=node.url, token=other_user.token).list_spaces(search=name)) == []
    assert list(HfApi(endpoint=node.url, token=False).list_spaces(search=name)) == []
    api.update_repo_settings(private, repo_type="space", private=False)
    assert [s.id for s in HfApi(endpoint=node.url, token=False).list_spaces(search=name)] == [
        private
    ]


def test_duplicate_copies_files_and_variables_never_secrets(node: Node, api: HfApi) -> None:
    source = f"admin/{unique('orig')}"
    api.create_repo(
        source,
        repo_type="space",
        space_sdk="static",
        space_secrets=[{"key": "TOKEN", "value": "hush"}],
        space_variables=[{"key": "COLOR", "value": "teal"}, {"key": "SIZE", "value": "s"}],
    )
    api.upload_file(
        path_or_fileobj=b"<p>orig</p>", path_in_repo="index.html", repo_id=source, repo_type="space"
    )
    copy = f"admin/{unique('copy')}"
    url = api.duplicate_repo(
        source,
        to_id=copy,
        repo_type="space",
        private=True,
        space_variables=[{"key": "SIZE", "value": "xl"}],
    )
    assert url.repo_id == copy
    info = api.space_info(copy)
    assert info.private is True and info.sdk == "static"
    assert info.sha == api.space_info(source).sha  # same history, same commit
    assert api.list_repo_files(copy, repo_type="space") == api.list_repo_files(
        source, repo_type="space"
    )

    from sqlalchemy import select

    from spaceport.db.models import Space, SpaceVariable
    from spaceport.db.session import session_scope

    with session_scope() as session:
        row = session.scalars(select(Space).where(Space.name == copy.split("/")[1])).one()
        env = {
            v.key: v.value
            for v in session.scalars(select(SpaceVariable).where(SpaceVariable.space_id == row.id))
        }
    assert env == {"COLOR": "teal", "SIZE": "xl"}  # no TOKEN: secrets stay with the source

    again = api.duplicate_repo(source, to_id=copy, repo_type="space", exist_ok=True)
    assert again.repo_id == copy
