"""The CLI's HTTP client: where the server is, which token to send, and errors as exit codes.

User commands talk only to the public HTTP API, so they work the same against a laptop's
`make up` and a remote server (`--url` / `SPACEPORT_URL`). Every failure becomes a `CliError`
whose exit code says what kind of failure it was, for scripts.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from enum import IntEnum
from typing import Any
from urllib.parse import quote

import httpx

from spaceport.cli import credentials

DEFAULT_URL = "http://localhost:8080"


class Exit(IntEnum):
    """Exit codes: documented in `spaceport --help`, stable for scripts."""

    OK = 0
    ERROR = 1
    USAGE = 2
    AUTH = 3
    FORBIDDEN = 4
    NOT_FOUND = 5
    CONFLICT = 6
    UNREACHABLE = 7
    SPACE_FAILED = 8
    TIMEOUT = 9


EXIT_HELP = (
    "Exit codes: 0 ok, 1 error, 2 usage, 3 not signed in or bad token, 4 forbidden, "
    "5 not found, 6 conflict, 7 server unreachable, 8 the Space failed (build or runtime "
    "error), 9 timed out waiting."
)
STATUS_EXITS = {401: Exit.AUTH, 403: Exit.FORBIDDEN, 404: Exit.NOT_FOUND, 409: Exit.CONFLICT}


class CliError(Exception):
    """A failure to report in one line, with what to do, and the exit code that says so."""

    def __init__(self, message: str, code: Exit = Exit.ERROR) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class Target:
    """The server and token of this invocation (global options, env, or `spaceport login`)."""

    url: str | None = None
    token: str | None = None

    def resolved_url(self) -> str:
        return (self.url or credentials.default_url() or DEFAULT_URL).rstrip("/")

    def resolved_token(self) -> str | None:
        return self.token or credentials.token_for(self.resolved_url())


TARGET = Target()


def space_path(space_id: str) -> str:
    owner, sep, name = space_id.partition("/")
    if not sep or not owner or not name or "/" in name:
        raise CliError(f"expected a Space id as owner/name (got {space_id!r})", Exit.USAGE)
    return f"{quote(owner, safe='')}/{quote(name, safe='')}"


class Api:
    """A thin client: JSON in, JSON out, HTTP errors mapped to `CliError`."""

    def __init__(self, *, auth: bool = True, timeout: float = 30) -> None:
        self.url = TARGET.resolved_url()
        token = TARGET.resolved_token()
        if auth and not token:
            raise CliError(
                f"not signed in to {self.url}: run `spaceport login` (or set SPACEPORT_TOKEN)",
                Exit.AUTH,
            )
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        headers["User-Agent"] = "spaceport-cli"
        transport = httpx.HTTPTransport(retries=2)  # connection attempts only
        self.http = httpx.Client(
            base_url=self.url, headers=headers, timeout=timeout, transport=transport
        )

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()

    def request(self, method: str, path: str, **kw: Any) -> Any:
        # A proxy reload can close a kept-alive connection under a poll: reads are retried.
        tries = 3 if method == "GET" else 1
        for attempt in range(tries):
            try:
                resp = self.http.request(method, path, **kw)
                break
            except httpx.TransportError as exc:
                if attempt + 1 < tries and not isinstance(exc, httpx.ConnectError):
                    time.sleep(0.3 * (attempt + 1))
                    continue
                raise CliError(
                    f"cannot reach {self.url} ({exc.__class__.__name__}): is the server up? "
                    "(`spaceport up`, or pass --url)",
                    Exit.UNREACHABLE,
                ) from exc
        check(resp)
        if not resp.content:
            return None
        try:
            return resp.json()
        except json.JSONDecodeError:
            return resp.text

    def get(self, path: str, **kw: Any) -> Any:
        return self.request("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> Any:
        return self.request("POST", path, **kw)

    def put(self, path: str, **kw: Any) -> Any:
        return self.request("PUT", path, **kw)

    def patch(self, path: str, **kw: Any) -> Any:
        return self.request("PATCH", path, **kw)

    def delete(self, path: str, **kw: Any) -> Any:
        return self.request("DELETE", path, **kw)

    def stream_events(self, path: str, timeout: float | None = None) -> Iterator[dict[str, Any]]:
        """Server-sent events of `path`, each `data:` decoded from JSON (raw text if not)."""
        try:
            with self.http.stream(
                "GET", path, headers={"Accept": "text/event-stream"}, timeout=timeout
            ) as resp:
                if resp.status_code >= 400:
                    resp.read()
                    check(resp)
                data: list[str] = []
                for line in resp.iter_lines():
                    if line.startswith("data:"):
                        data.append(line[5:].removeprefix(" "))
                    elif not line and data:
                        text = "\n".join(data)
                        data = []
                        try:
                            yield json.loads(text)
                        except json.JSONDecodeError:
                            yield {"data": text}
        except httpx.TransportError as exc:
            if isinstance(exc, httpx.ReadTimeout):
                return
            raise CliError(f"lost the log stream from {self.url}: {exc}", Exit.UNREACHABLE) from exc


def check(resp: httpx.Response) -> None:
    if resp.status_code < 400:
        return
    message = resp.headers.get("X-Error-Message") or ""
    try:
        body = resp.json()
        if isinstance(body, dict):
            message = str(body.get("error") or body.get("detail") or message)
    except (json.JSONDecodeError, UnicodeDecodeError):
        message = message or resp.text[:300]
    message = message or f"HTTP {resp.status_code}"
    code = STATUS_EXITS.get(resp.status_code, Exit.ERROR)
    if code is Exit.AUTH:
        message += " (run `spaceport login` with a valid token)"
    raise CliError(message, code)
