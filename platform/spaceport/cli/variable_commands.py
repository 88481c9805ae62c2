"""`spaceport secrets set|rm|list` and `spaceport vars set|rm|list`.

Both become environment variables of the app, and changing either restarts it (`--wait`
follows the restart). Secret values are write-only: they go in and are never shown again.
"""

from __future__ import annotations

import sys
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from spaceport.cli.client import Api, CliError, Exit, space_path
from spaceport.cli.output import ago, console, ok, print_json
from spaceport.cli.space_commands import JSON, SPACE, TIMEOUT, WAIT, summary
from spaceport.cli.waiting import container_of, wait_running

secrets_app = typer.Typer(help="Secrets: env vars encrypted at rest, never shown again.")
vars_app = typer.Typer(help="Variables: public env vars of the app.")


def read_value(value: str | None, key: str, secret: bool) -> str:
    """The value from the argument, stdin (`-`), or a prompt (hidden for secrets)."""
    if value == "-":
        return sys.stdin.read().rstrip("\n")
    if value is not None:
        return value
    if not sys.stdin.isatty():
        raise CliError(f"give a value for {key} (or '-' to read it from stdin)", Exit.USAGE)
    return str(typer.prompt(f"Value of {key}", hide_input=secret))


def _set(
    kind: str, space: str, key: str, value: str, description: str | None, wait: bool, timeout: float
) -> None:
    body: dict[str, Any] = {"key": key, "value": value}
    if description:
        body["description"] = description
    with Api() as api:
        before = container_of(summary(api, space)) if wait else None
        api.post(f"/api/spaces/{space_path(space)}/{kind}", json=body)
        ok(f"{key} saved on {space}: the Space restarts to use it")
        if wait:
            s = wait_running(api, space, replacing=before, timeout=timeout)
            ok(f"{space} is RUNNING with it (container {container_of(s)})")


def _rm(kind: str, space: str, key: str) -> None:
    with Api() as api:
        api.delete(f"/api/spaces/{space_path(space)}/{kind}", json={"key": key})
    ok(f"{key} removed from {space}: the Space restarts without it")


def _list(kind: str, space: str, as_json: bool) -> None:
    with Api() as api:
        found = api.get(f"/api/spaces/{space_path(space)}/{kind}")
    if isinstance(found, list):  # tolerate a list of {key, ...}
        found = {item["key"]: item for item in found}
    if as_json:
        print_json(found)
        return
    if not found:
        console.print(f"[dim]No {kind} on {space}.[/]")
        return
    table = Table(box=None, header_style="bold dim")
    table.add_column("KEY")
    table.add_column("VALUE")
    table.add_column("UPDATED")
    for key, meta in sorted(found.items()):
        meta = meta if isinstance(meta, dict) else {"value": meta}
        shown = "••••••••" if kind == "secrets" else str(meta.get("value", ""))
        table.add_row(escape(key), escape(shown), ago(meta.get("updatedAt")))
    console.print(table)


@secrets_app.command("set")
def secret_set(
    space: str = SPACE,
    key: str = typer.Argument(..., help="Env var name, e.g. API_KEY."),
    value: str | None = typer.Argument(None, help="The value; '-' reads stdin; none: prompt."),
    description: str | None = typer.Option(None, help="What it is for."),
    wait: bool = WAIT,
    timeout: float = TIMEOUT,
) -> None:
    """Add or replace a secret (the Space restarts with it)."""
    _set("secrets", space, key, read_value(value, key, True), description, wait, timeout)


@secrets_app.command("rm")
def secret_rm(space: str = SPACE, key: str = typer.Argument(...)) -> None:
    """Remove a secret (the Space restarts without it)."""
    _rm("secrets", space, key)


@secrets_app.command("list")
def secret_list(space: str = SPACE, as_json: bool = JSON) -> None:
    """Secret names (values are never shown)."""
    _list("secrets", space, as_json)


@vars_app.command("set")
def var_set(
    space: str = SPACE,
    key: str = typer.Argument(..., help="Env var name, e.g. MODEL_ID."),
    value: str | None = typer.Argument(None, help="The value; '-' reads stdin; none: prompt."),
    description: str | None = typer.Option(None, help="What it is for."),
    wait: bool = WAIT,
    timeout: float = TIMEOUT,
) -> None:
    """Add or change a variable (the Space restarts with it)."""
    _set("variables", space, key, read_value(value, key, False), description, wait, timeout)


@vars_app.command("rm")
def var_rm(space: str = SPACE, key: str = typer.Argument(...)) -> None:
    """Remove a variable (the Space restarts without it)."""
    _rm("variables", space, key)


@vars_app.command("list")
def var_list(space: str = SPACE, as_json: bool = JSON) -> None:
    """Variables and their values."""
    _list("variables", space, as_json)


def register(app: typer.Typer) -> None:
    app.add_typer(secrets_app, name="secrets")
    app.add_typer(vars_app, name="vars")
