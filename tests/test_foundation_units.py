"""Fast checks of the foundation's pure logic: names, tokens, admin bootstrap, settings."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from spaceport.auth.bootstrap import ensure_admin
from spaceport.auth.tokens import hash_token, lookup_token
from spaceport.db.models import Base, Token, User
from spaceport.names import InvalidName, check_name, split_space_id
from spaceport.settings import Settings


@pytest.fixture(autouse=True)
def no_node_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """These check Settings' own defaults: drop SPACEPORT_* left by a running test node."""
    import os

    for key in list(os.environ):
        if key.startswith("SPACEPORT_"):
            monkeypatch.delenv(key)


@pytest.mark.parametrize("name", ["demo", "a", "My_App-2.0", "x" * 96])
def test_valid_names(name: str) -> None:
    assert check_name(name) == name


@pytest.mark.parametrize("name", ["", "-x", ".x", "a/b", "a..b", "x" * 97, "é", "demo.git", "a "])
def test_invalid_names_say_what_is_allowed(name: str) -> None:
    with pytest.raises(InvalidName, match="letters, digits"):
        check_name(name)


def test_space_id_split() -> None:
    assert split_space_id("alice/demo") == ("alice", "demo")
    with pytest.raises(InvalidName, match="owner/name"):
        split_space_id("demo")


def session_for(tmp_path: Path) -> Session:
    engine = create_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    Base.metadata.create_all(engine)
    return Session(engine)


def test_admin_bootstrap_writes_token_file_0600_once(tmp_path: Path) -> None:
    settings = Settings(data=tmp_path)
    with session_for(tmp_path) as session:
        token = ensure_admin(session, settings)
        assert token is not None and token.startswith("sp_")
        path = tmp_path / "admin.token"
        assert path.read_text().strip() == token
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert ensure_admin(session, settings) is None  # second start: nothing new
        stored = session.scalars(select(Token)).all()
        assert len(stored) == 1 and stored[0].token_hash == hash_token(token)
        user = lookup_token(session, token)
        assert user is not None and user.user.is_admin


def test_admin_token_from_env_is_hashed_and_no_file(tmp_path: Path) -> None:
    settings = Settings(data=tmp_path, admin_token="sp_from_env_123")
    with session_for(tmp_path) as session:
        assert ensure_admin(session, settings) is None
        assert not (tmp_path / "admin.token").exists()
        token = lookup_token(session, "sp_from_env_123")
        assert token is not None and token.user.name == "admin"
        assert session.scalar(select(User.name)) == "admin"
        assert "sp_from_env_123" not in {t.token_hash for t in session.scalars(select(Token))}


def test_app_urls_follow_the_contract(tmp_path: Path) -> None:
    settings = Settings(data=tmp_path)
    assert settings.app_url("alice", "demo") == "http://alice-demo.localhost:8080/"
    assert settings.app_host("Alice", "My_App.v2") == "alice-my-app-v2.localhost"
    prod = Settings(data=tmp_path, url="https://spaces.example.org", apps_domain="apps.example.org")
    assert prod.app_url("alice", "demo") == "https://alice-demo.apps.example.org/"


def test_secrets_round_trip_and_are_not_plaintext(tmp_path: Path) -> None:
    from spaceport.auth.crypto import decrypt, encrypt

    settings = Settings(data=tmp_path)
    sealed = encrypt(settings, "hunter2")
    assert b"hunter2" not in sealed
    assert decrypt(settings, sealed) == "hunter2"
    key = tmp_path / "secret.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600


@pytest.mark.parametrize(
    ("default", "own", "after"),
    [
        (600, None, 600.0),  # no sleep time of its own: the node's default
        (600, 30, 30.0),  # its own wins
        (600, -1, None),  # its own "never" wins too
        (0, None, None),  # 0: the default puts nobody to sleep
        ("none", None, None),  # so does none, as the old setting's null did
        (0, 30, 30.0),
    ],
)
def test_default_sleep_time(default: object, own: int | None, after: float | None) -> None:
    from spaceport.lifecycle.sleeper import sleep_after_s

    settings = Settings(default_sleep_s=default)
    assert sleep_after_s(settings, own) == after


def test_default_sleep_old_name_is_still_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPACEPORT_DEFAULT_SLEEP_TIME_S", "900")
    assert Settings().default_sleep_s == 900
    monkeypatch.setenv("SPACEPORT_DEFAULT_SLEEP_S", "120")  # the new name wins
    assert Settings().default_sleep_s == 120
