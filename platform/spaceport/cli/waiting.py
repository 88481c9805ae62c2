"""`--wait`: follow a Space's stage until it runs (a new container, after a restart) or fails.

A spinner shows the current stage, each change is printed, and so is the build's newest log
line as it changes (its live steps), so a person sees the build and start go by; the exit
code says how it ended (0 running, 8 failed, 9 timed out).
"""

from __future__ import annotations

import time
from typing import Any

from rich.markup import escape

from spaceport.cli.client import Api, CliError, Exit, space_path
from spaceport.cli.output import ERROR_STAGES, console, stage

POLL_S = 0.5


def container_of(summary: dict[str, Any]) -> str | None:
    container = summary.get("container")
    return str(container["id"]) if container else None


def wait_running(
    api: Api,
    space_id: str,
    *,
    replacing: str | None = None,
    timeout: float = 900,
    quiet: bool = False,
) -> dict[str, Any]:
    """Poll until RUNNING (on a container other than `replacing`, when given)."""
    path = f"/api/v1/spaces/{space_path(space_id)}"
    started = time.monotonic()
    deadline = started + timeout
    initial: str | None = None
    last: str | None = None
    step: str | None = None
    moved = False
    status = None if quiet else console.status(f"waiting for {space_id}…", spinner="dots")
    if status is not None:
        status.start()
    try:
        while True:
            summary = api.get(path)
            current = str(summary["stage"])
            initial = initial or current
            swapped = replacing is not None and container_of(summary) not in (None, replacing)
            moved = moved or current != initial or swapped
            if current != last:
                if not quiet and last is not None:
                    console.print("  → ", stage(current))
                last = current
            line = (summary.get("lastBuild") or {}).get("lastLine")
            if line and line != step and not quiet:  # the build's live steps
                console.print(f"  [dim]· {escape(line[:160])}[/]", highlight=False)
            step = line or step
            if status is not None:
                elapsed = int(time.monotonic() - started)
                status.update(f"{space_id}: [bold]{current}[/] ({elapsed} s)")
            new_container = replacing is None or container_of(summary) not in (None, replacing)
            if current == "RUNNING" and new_container:
                return dict(summary)
            error = summary.get("errorMessage")
            settled = moved or time.monotonic() - started > 5
            if current in ERROR_STAGES and settled:
                raise CliError(
                    f"{space_id} is {current}: {error or 'no details'}", Exit.SPACE_FAILED
                )
            if current == "RUNNING" and error and moved and not new_container:
                raise CliError(f"{space_id} kept its previous version: {error}", Exit.SPACE_FAILED)
            if time.monotonic() > deadline:
                raise CliError(
                    f"{space_id} is still {current} after {timeout:.0f} s "
                    "(see `spaceport logs --build` / `--run`)",
                    Exit.TIMEOUT,
                )
            time.sleep(POLL_S)
    finally:
        if status is not None:
            status.stop()
