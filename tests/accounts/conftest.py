"""Fixtures for people and their tokens: users made through the API, tokens through the API,
and a console sign-in over real HTTP (the sign-in form), all against the session's node."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import httpx

from tests.conftest import Node, unique


@dataclass
class Person:
    name: str
    token: str


def make_user(node: Node, prefix: str = "user", **extra: Any) -> Person:
    with node.api() as admin:
        r = admin.post("/api/v1/users", json={"name": unique(prefix), **extra})
        assert r.status_code == 201, r.text
        return Person(r.json()["name"], r.json()["token"])


def make_token(node: Node, token: str, **body: Any) -> dict[str, Any]:
    with node.api(token) as c:
        r = c.post("/api/v1/tokens", json={"name": unique("t"), "role": "write", **body})
        assert r.status_code == 201, r.text
        return dict(r.json())


def make_space(node: Node, token: str, *, private: bool = False) -> str:
    with node.api(token) as c:
        name = unique("acct")
        body = {"type": "space", "name": name, "sdk": "static", "private": private}
        r = c.post("/api/repos/create", json=body)
        assert r.status_code == 200, r.text
        return str(r.json()["name"])


def console_client(node: Node, token: str) -> httpx.Client:
    """An httpx client signed in to the console through its sign-in form."""
    client = httpx.Client(base_url=node.url, timeout=30)
    form = client.get("/login").text
    match = re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert match, "the sign-in form carries a CSRF field"
    r = client.post("/login", data={"token": token, "csrf_token": match.group(1), "next": "/"})
    assert r.status_code == 303, r.text
    return client


def session_token_id(node: Node, token: str) -> int:
    """The id of the newest console session of the token's user."""
    with node.api(token) as c:
        sessions = [t for t in c.get("/api/v1/tokens").json() if t["kind"] == "session"]
    return int(sessions[-1]["id"])
