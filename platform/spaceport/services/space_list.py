"""Hugging Face's `GET /api/spaces`: the Spaces a caller may see, filtered, sorted and paged.

Pages are cut by a keyset, not an offset: a page's cursor carries the sort key of its last item
(the sorted value, the creation time, the row id) and the next page starts strictly after it.
So a Space created or deleted between two pages neither repeats an item nor skips one, and a
client walking every page (huggingface_hub follows `Link: rel="next"`) gets each Space once.

Where the order is made of columns (creation date; likes and trending score, which are 0 for
every Space here, so they fall back to it) the database filters, sorts and cuts the page, and
only that page's Spaces are summarized (their head commit's date and README are read from
git). Sorting by the last commit's date or by id, or filtering by tags, needs every Space's
head commit: they are all summarized, then cut the same way.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, or_, select, tuple_
from sqlalchemy.orm import Session

from spaceport.auth.principal import Principal
from spaceport.db.models import Space
from spaceport.errors import SpaceportError
from spaceport.services import access
from spaceport.services.views import space_summary
from spaceport.settings import Settings

SORTS = {"createdAt", "lastModified", "likes", "trendingScore", "id"}
COLUMN_SORTS = {"createdAt", "likes", "trendingScore"}  # likes, trendingScore: always 0 here

Key = tuple[Any, str, int]  # (sorted value, creation time in ISO form, row id)


@dataclass(frozen=True)
class ListQuery:
    who: Principal | None
    author: str | None = None
    search: str = ""
    sort: str = "createdAt"
    descending: bool = True
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    next_cursor: str | None  # None: this was the last page


def encode_cursor(key: Key) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(key)).encode()).decode()


def decode_cursor(cursor: str) -> Key:
    try:
        value, created, pk = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        if not isinstance(created, str) or not isinstance(pk, int):
            raise ValueError(cursor)
        return value, created, pk
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError):
        raise SpaceportError(
            f"invalid pagination cursor {cursor!r}: use the Link header's URL"
        ) from None


def _visible(query: ListQuery) -> Select[Space]:
    stmt = select(Space)
    who = query.who
    if who is None:
        stmt = stmt.where(Space.private.is_(False))
    elif not who.is_admin:
        stmt = stmt.where(or_(Space.private.is_(False), Space.owner.in_(who.namespaces)))
    if query.author:
        stmt = stmt.where(Space.owner == query.author)
    if query.search:
        needle = query.search.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        space_id = func.lower(Space.owner + "/" + Space.name)
        stmt = stmt.where(space_id.like(f"%{needle}%", escape="\\"))
    return stmt


def _key(space: Space, value: Any) -> Key:
    return (value, space.created_at.isoformat(), space.id)


def _after(key: Key, cursor: Key, descending: bool) -> bool:
    return key < cursor if descending else key > cursor


def page_spaces(
    session: Session, settings: Settings, query: ListQuery, size: int, cursor: str | None
) -> Page:
    """One page of at most `size` Spaces after `cursor` (None: the first page)."""
    if query.sort not in SORTS:
        raise SpaceportError(f"sort must be one of {', '.join(sorted(SORTS))} (got {query.sort!r})")
    after = decode_cursor(cursor) if cursor else None
    if query.sort in COLUMN_SORTS and not query.tags:
        return _page_in_database(session, settings, query, size, after)
    return _page_in_memory(session, settings, query, size, after)


def _page_in_database(
    session: Session, settings: Settings, query: ListQuery, size: int, after: Key | None
) -> Page:
    stmt = _visible(query)
    order = (Space.created_at, Space.id)
    if after is not None:
        key, last = tuple_(Space.created_at, Space.id), tuple_(_parse_time(after[1]), after[2])
        stmt = stmt.where(key < last if query.descending else key > last)
    stmt = stmt.order_by(*(c.desc() if query.descending else c.asc() for c in order))
    rows = [s for s in session.scalars(stmt.limit(size + 1)) if access.can_read(s, query.who)]
    shown = rows[:size]
    items = [space_summary(settings, s) for s in shown]
    more = len(rows) > size and shown
    return Page(items, encode_cursor(_key(shown[-1], 0)) if more else None)


def _page_in_memory(
    session: Session, settings: Settings, query: ListQuery, size: int, after: Key | None
) -> Page:
    spaces = [s for s in session.scalars(_visible(query)) if access.can_read(s, query.who)]
    rows = []
    for s in spaces:
        item = space_summary(settings, s)
        if all(tag in item["tags"] or tag == item["sdk"] for tag in query.tags):
            value = item.get(query.sort) or 0
            rows.append((_key(s, value), item))
    rows.sort(key=lambda r: r[0], reverse=query.descending)
    if after is not None:
        try:
            rows = [r for r in rows if _after(r[0], after, query.descending)]
        except TypeError:  # a cursor of another sort
            raise SpaceportError("invalid pagination cursor: use the Link header's URL") from None
    shown = rows[:size]
    more = len(rows) > size
    return Page([item for _, item in shown], encode_cursor(shown[-1][0]) if more else None)


def _parse_time(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise SpaceportError("invalid pagination cursor: use the Link header's URL") from None
