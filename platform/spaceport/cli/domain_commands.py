"""`spaceport domains add|rm|list`: a Space's custom domains (services/domains.py).

A domain routes once its DNS points at this node: the node checks that by itself within
seconds of the change, and `list` shows where each domain stands and what is missing.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import typer
from rich.markup import escape
from rich.table import Table

from spaceport.cli.client import Api, space_path
from spaceport.cli.output import console, ok, print_json
from spaceport.cli.space_commands import JSON, SPACE

domains_app = typer.Typer(help="Custom domains: your own names for a Space's app.")
DOMAIN = typer.Argument(..., help="A domain of yours, e.g. demo.example.org.")


def _show(found: list[dict[str, Any]], space: str, as_json: bool) -> None:
    if as_json:
        print_json(found)
        return
    if not found:
        console.print(f"[dim]No custom domains on {space}.[/]")
        return
    table = Table(box=None, header_style="bold dim")
    table.add_column("DOMAIN")
    table.add_column("STAGE")
    table.add_column("NEXT STEP")
    for item in found:
        # what the last check got, then how to pass it (the DNS target or the TXT record)
        step = "; ".join(str(item[k]) for k in ("error", "verification") if item.get(k))
        table.add_row(escape(item["domain"]), item["stage"], escape(step or "routed"))
    console.print(table)


@domains_app.command("add")
def add(space: str = SPACE, domain: str = DOMAIN, as_json: bool = JSON) -> None:
    """Give the Space a custom domain; it routes once its DNS points at this node."""
    with Api() as api:
        found = api.post(f"/api/v1/spaces/{space_path(space)}/domains", json={"domain": domain})
    if not as_json:
        ok(
            f"{domain} added to {space}: point its DNS at this node (or add the TXT record "
            "below); it routes once verified"
        )
    _show(found, space, as_json)


@domains_app.command("rm")
def rm(space: str = SPACE, domain: str = DOMAIN, as_json: bool = JSON) -> None:
    """Remove a custom domain: it stops routing at once."""
    with Api() as api:
        found = api.delete(f"/api/v1/spaces/{space_path(space)}/domains/{quote(domain, safe='')}")
    if not as_json:
        ok(f"{domain} removed from {space}")
    _show(found, space, as_json)


@domains_app.command("list")
def list_domains(space: str = SPACE, as_json: bool = JSON) -> None:
    """The Space's custom domains, each with its stage and what it still needs."""
    with Api() as api:
        found = api.get(f"/api/v1/spaces/{space_path(space)}/domains")
    _show(found, space, as_json)


def register(app: typer.Typer) -> None:
    app.add_typer(domains_app, name="domains")
