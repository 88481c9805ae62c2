"""How the CLI prints: rich for people, `--json` for scripts, and one style per stage."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.text import Text

from spaceport.stages import label

console = Console()
err_console = Console(stderr=True)

STAGE_STYLES = {
    "RUNNING": "bold green",
    "BUILDING": "bold yellow",
    "APP_STARTING": "bold yellow",
    "RUNNING_BUILDING": "bold yellow",
    "RUNNING_APP_STARTING": "bold yellow",
    "BUILD_ERROR": "bold red",
    "CONFIG_ERROR": "bold red",
    "RUNTIME_ERROR": "bold red",
    "DELETING": "red",
}
ERROR_STAGES = frozenset({"BUILD_ERROR", "CONFIG_ERROR", "RUNTIME_ERROR"})


def stage(value: str) -> Text:
    """A stage as people read it (stages.py's label, colored); `--json` keeps the raw name."""
    return Text(label(value), style=STAGE_STYLES.get(value, "dim"))


def print_json(value: Any) -> None:
    """Plain JSON on stdout (no colors, no wrapping): what `--json` promises scripts."""
    sys.stdout.write(json.dumps(value, indent=2, sort_keys=True) + "\n")
    sys.stdout.flush()


def ago(iso: str | None) -> str:
    if not iso:
        return "—"
    then = datetime.fromisoformat(iso.rstrip("Z")).replace(tzinfo=UTC)
    seconds = int((datetime.now(UTC) - then).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return "just now"


def ok(message: str) -> None:
    console.print(f"[green]✓[/] {message}")


def fail(message: str) -> None:
    err_console.print(f"[red]error:[/] {message}")
