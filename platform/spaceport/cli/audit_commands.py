"""`spaceport audit`: who changed what, when and from where (services/audit.py).

One command for the three logs the API keeps apart: a Space's (`--space`, for those who may
change it), an organization's (`--org`, its admins) and the whole platform's (site admins).
`--jsonl` writes JSON lines as the server sends them: without `--limit`, every matching entry,
so `spaceport audit --jsonl > audit.jsonl` is an export.
"""

from __future__ import annotations

import sys
from typing import Any
from urllib.parse import quote

import httpx
import typer
from rich.markup import escape
from rich.table import Table

from spaceport.cli.client import Api, CliError, Exit, check, space_path
from spaceport.cli.output import ago, console, print_json
from spaceport.cli.space_commands import JSON

DEFAULT_LIMIT = 50


def _path(space: str | None, org: str | None) -> str:
    if space and org:
        raise CliError("give --space or --org, not both", Exit.USAGE)
    if space:
        return f"/api/v1/spaces/{space_path(space)}/audit"
    if org:
        return f"/api/v1/orgs/{quote(org, safe='')}/audit"
    return "/api/v1/audit"


def _details(item: dict[str, Any]) -> str:
    facts = [f"{k}={v}" for k, v in (item.get("details") or {}).items() if v not in (None, [])]
    target = item.get("target")
    if target and target != item.get("space"):
        facts.insert(0, str(target))
    return " ".join(facts)


def _table(items: list[dict[str, Any]]) -> None:
    if not items:
        console.print("[dim]No entries.[/]")
        return
    table = Table(box=None, header_style="bold dim")
    for column in ("WHEN", "WHO", "ACTION", "SPACE", "FROM", "DETAILS"):
        table.add_column(column, overflow="fold")
    for item in items:
        who = item.get("actor") or ("(anonymous)" if item.get("ip") else "(platform)")
        if item.get("token"):
            who += f" [dim]({escape(item['token'])})[/]"
        table.add_row(
            f"{item['at']} [dim]{ago(item['at'])}[/]",
            who,
            item["action"],
            escape(item.get("space") or "—"),
            escape(item.get("ip") or "—"),
            escape(_details(item)),
        )
    console.print(table)


def _stream_jsonl(api: Api, path: str, params: dict[str, Any]) -> None:
    try:
        with api.http.stream("GET", path, params={**params, "format": "jsonl"}) as resp:
            if resp.status_code >= 400:
                resp.read()
                check(resp)
            for chunk in resp.iter_text():
                sys.stdout.write(chunk)
    except httpx.TransportError as exc:
        raise CliError(f"lost the export from {api.url}: {exc}", Exit.UNREACHABLE) from exc
    sys.stdout.flush()


def audit(
    space: str | None = typer.Option(None, "--space", help="A Space's log (owner/name)."),
    org: str | None = typer.Option(None, "--org", help="An organization's log (its admins)."),
    actor: str | None = typer.Option(None, "--actor", help="Only what this user did."),
    action: str | None = typer.Option(
        None, "--action", help="An action or a dotted prefix: space.push, space.secret, token."
    ),
    since: str | None = typer.Option(
        None, "--since", help="ISO date or time (UTC), or an age: 30m, 24h, 7d."
    ),
    until: str | None = typer.Option(None, "--until", help="Entries before this time."),
    limit: int | None = typer.Option(
        None, "--limit", min=1, max=1000, help=f"At most this many (default {DEFAULT_LIMIT})."
    ),
    jsonl: bool = typer.Option(
        False, "--jsonl", help="JSON lines; without --limit every entry (an export)."
    ),
    as_json: bool = JSON,
) -> None:
    """The audit log, newest first: the whole platform's (admins), an --org's or a --space's."""
    path = _path(space, org)
    params = {
        k: v
        for k, v in {"actor": actor, "action": action, "since": since, "until": until}.items()
        if v
    }
    with Api() as api:
        if jsonl:
            _stream_jsonl(api, path, {**params, **({"limit": limit} if limit else {})})
            return
        items = api.get(path, params={**params, "limit": limit or DEFAULT_LIMIT})
    if as_json:
        print_json(items)
    else:
        _table(items)


def register(app: typer.Typer) -> None:
    app.command()(audit)
