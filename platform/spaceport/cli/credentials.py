"""Saved sign-ins: one token per server, written by `spaceport login`, readable only by you.

The file is `$SPACEPORT_CREDENTIALS`, else `$XDG_CONFIG_HOME/spaceport/credentials.json`
(default `~/.config/...`), mode 0600. The server of the last login becomes the default, so
`spaceport list` needs no `--url` afterwards.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def path() -> Path:
    explicit = os.environ.get("SPACEPORT_CREDENTIALS")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "spaceport" / "credentials.json"


def load() -> dict[str, Any]:
    try:
        data = json.loads(path().read_text())
    except (OSError, json.JSONDecodeError):
        return {"default": None, "servers": {}}
    if not isinstance(data, dict):
        return {"default": None, "servers": {}}
    data.setdefault("servers", {})
    return data


def _write(data: dict[str, Any]) -> None:
    target = path()
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = target.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=2)
    os.replace(tmp, target)


def save(url: str, token: str, user: str) -> Path:
    data = load()
    data["servers"][url] = {"token": token, "user": user}
    data["default"] = url
    _write(data)
    return path()


def forget(url: str) -> bool:
    data = load()
    if url not in data["servers"]:
        return False
    del data["servers"][url]
    if data.get("default") == url:
        data["default"] = next(iter(data["servers"]), None)
    _write(data)
    return True


def default_url() -> str | None:
    value = load().get("default")
    return str(value) if value else None


def token_for(url: str) -> str | None:
    entry = load()["servers"].get(url.rstrip("/"))
    return str(entry["token"]) if isinstance(entry, dict) and entry.get("token") else None
