"""Run the real `spaceport` command (the installed entry point) against the session's node."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Node

SPACEPORT = Path(sys.executable).parent / "spaceport"


@dataclass
class Cli:
    """`cli("list", "--json")`: runs the command; a saved login lives in `creds` only."""

    creds: Path
    node: Node

    def __call__(
        self,
        *args: str,
        input: str | None = None,
        token: str | None = None,
        env: dict[str, str] | None = None,
        timeout: float = 300,
    ) -> subprocess.CompletedProcess[str]:
        full = {k: v for k, v in os.environ.items() if k != "SPACEPORT_TOKEN"}
        full.update({"SPACEPORT_CREDENTIALS": str(self.creds), "COLUMNS": "200"})
        full["SPACEPORT_URL"] = self.node.url  # what a user's remote server URL would be
        if token:
            full["SPACEPORT_TOKEN"] = token
        full.update(env or {})
        return subprocess.run(
            [str(SPACEPORT), *args],
            input=input,
            capture_output=True,
            text=True,
            env=full,
            timeout=timeout,
            check=False,
        )

    def json(self, *args: str, **kw: Any) -> Any:
        proc = self(*args, "--json", **kw)
        assert proc.returncode == 0, proc.stderr + proc.stdout
        return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def cli(node: Node, tmp_path_factory: pytest.TempPathFactory) -> Cli:
    """A CLI signed in as the admin (through `spaceport login`, like a person)."""
    c = Cli(tmp_path_factory.mktemp("cli") / "credentials.json", node)
    proc = c("login", "--token", "-", input=node.token + "\n")
    assert proc.returncode == 0, proc.stderr
    return c
