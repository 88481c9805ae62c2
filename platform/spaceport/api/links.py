"""URLs handed back to clients: repo URLs and `Link` pagination, on the client's own host.

huggingface_hub parses repo URLs only when their host is its endpoint's host, and follows
`Link: <...>; rel="next"` as an absolute URL. So both are built from the address the client
used (through the proxy: `Host` and `X-Forwarded-Proto`), not from `SPACEPORT_URL`.
"""

from __future__ import annotations

import base64
import binascii

from fastapi import Request, Response

from spaceport.errors import SpaceportError


def public_base(request: Request) -> str:
    """`scheme://host[:port]` as the client reached us."""
    proto = request.headers.get("x-forwarded-proto", request.url.scheme).split(",")[0].strip()
    host = request.headers.get("x-forwarded-host") or request.headers.get("host")
    return f"{proto}://{host}" if host else str(request.base_url).rstrip("/")


def space_url(request: Request, space_id: str) -> str:
    """The web URL of a Space as Hugging Face gives it: `{endpoint}/spaces/{owner}/{name}`."""
    return f"{public_base(request)}/spaces/{space_id}"


def decode_cursor(cursor: str | None) -> int:
    """The offset an opaque `cursor` query parameter carries (0 when absent)."""
    if not cursor:
        return 0
    try:
        return max(0, int(base64.urlsafe_b64decode(cursor.encode()).decode()))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise SpaceportError(
            f"invalid pagination cursor {cursor!r}: use the Link header's URL"
        ) from None


def set_next_link(request: Request, response: Response, offset: int | None) -> None:
    """Point `Link: rel="next"` at the page starting at `offset` (None: this is the last page)."""
    if offset is not None:
        set_next_cursor(request, response, base64.urlsafe_b64encode(str(offset).encode()).decode())


def set_next_cursor(
    request: Request, response: Response, cursor: str | None, param: str = "cursor"
) -> None:
    """Point `Link: rel="next"` at this URL with `param`=`cursor` (None: the last page)."""
    if cursor is None:
        return
    url = request.url.include_query_params(**{param: cursor})
    base = public_base(request)
    target = f"{base}{url.path}?{url.query}"
    response.headers["Link"] = f'<{target}>; rel="next"'
