"""Pure pieces of the CLI: argument parsing, saved sign-ins, exit codes (no server needed)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from spaceport.cli import credentials
from spaceport.cli.client import CliError, Exit, space_path
from spaceport.cli.space_commands import parse_sleep


@pytest.mark.parametrize(
    ("text", "seconds"), [("300", 300), ("15m", 900), ("2h", 7200), ("1d", 86400), ("never", -1)]
)
def test_sleep_times(text: str, seconds: int) -> None:
    assert parse_sleep(text) == seconds


def test_bad_sleep_time_is_a_usage_error() -> None:
    with pytest.raises(CliError) as err:
        parse_sleep("soon")
    assert err.value.code is Exit.USAGE and "15m" in str(err.value)


def test_space_ids_are_checked_and_quoted() -> None:
    assert space_path("alice/my app") == "alice/my%20app"
    for bad in ("alice", "/x", "a/b/c", "a/"):
        with pytest.raises(CliError):
            space_path(bad)


def test_credentials_are_private_and_per_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SPACEPORT_CREDENTIALS", str(tmp_path / "c" / "credentials.json"))
    credentials.save("http://a:8080", "sp_a", "alice")
    credentials.save("http://b:8080", "sp_b", "bob")
    assert stat.S_IMODE(credentials.path().stat().st_mode) == 0o600
    assert credentials.default_url() == "http://b:8080"  # the last login
    assert credentials.token_for("http://a:8080/") == "sp_a"
    assert credentials.forget("http://b:8080")
    assert credentials.default_url() == "http://a:8080"
    assert credentials.token_for("http://b:8080") is None
