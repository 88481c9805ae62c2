"""`spaceport orgs ...` and `spaceport members ...`: organizations and their members' roles.

Roles are Hugging Face's: read, contributor (creates Spaces, changes their own), write (changes
all the organization's Spaces), admin (also manages the organization and its members).
"""

from __future__ import annotations

import typer
from rich.markup import escape
from rich.table import Table

from spaceport.cli.client import Api
from spaceport.cli.output import ago, console, ok, print_json
from spaceport.cli.space_commands import JSON

orgs_app = typer.Typer(help="Organizations: shared namespaces for teams.", no_args_is_help=True)
members_app = typer.Typer(help="Members of an organization and their roles.", no_args_is_help=True)
ROLE_HELP = "read, contributor, write or admin."


@orgs_app.command("list")
def orgs_list(as_json: bool = JSON) -> None:
    """Your organizations and your role in each (administrators: all of them)."""
    with Api() as api:
        found = api.get("/api/v1/orgs")
    if as_json:
        print_json(found)
        return
    if not found:
        console.print("[dim]No organization yet: `spaceport orgs create NAME`.[/]")
        return
    table = Table(box=None, header_style="bold dim")
    for col in ("ORGANIZATION", "YOUR ROLE", "MEMBERS", "SPACES", "CREATED"):
        table.add_column(col)
    for o in found:
        table.add_row(
            escape(o["name"]),
            o.get("role") or "-",
            str(o["numUsers"]),
            str(o["numSpaces"]),
            ago(o["createdAt"]),
        )
    console.print(table)


@orgs_app.command("create")
def orgs_create(
    name: str = typer.Argument(..., help="Its name (shared with user names)."),
    fullname: str | None = typer.Option(None, help="A display name."),
    as_json: bool = JSON,
) -> None:
    """Create an organization; you become its admin."""
    with Api() as api:
        org = api.post("/api/v1/orgs", json={"name": name, "fullname": fullname})
    if as_json:
        print_json(org)
        return
    ok(f"Created organization [bold]{escape(org['name'])}[/]; you are its admin")


@orgs_app.command("show")
def orgs_show(name: str = typer.Argument(...), as_json: bool = JSON) -> None:
    """An organization and its members."""
    with Api() as api:
        org = api.get(f"/api/v1/orgs/{name}")
    if as_json:
        print_json(org)
        return
    console.print(
        f"[bold]{escape(org['name'])}[/] ({escape(org['fullname'])}): "
        f"{org['numSpaces']} Space(s), your role: {org.get('role') or '-'}"
    )
    _members_table(org["members"])


@orgs_app.command("rename")
def orgs_rename(
    name: str = typer.Argument(...),
    new_name: str = typer.Argument(..., help="Its Spaces move to the new namespace."),
) -> None:
    """Rename an organization (admins); its Spaces move and rebuild under the new name."""
    with Api() as api:
        org = api.patch(f"/api/v1/orgs/{name}", json={"name": new_name})
    moved = org.get("moved") or []
    ok(f"Renamed {escape(name)} to [bold]{escape(org['name'])}[/]; {len(moved)} Space(s) moved")


@orgs_app.command("delete")
def orgs_delete(
    name: str = typer.Argument(...),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Delete an organization that owns no Space (admins)."""
    if not yes:
        typer.confirm(f"Delete the organization {name}?", abort=True)
    with Api() as api:
        api.delete(f"/api/v1/orgs/{name}")
    ok(f"Deleted organization {escape(name)}")


def _members_table(members: list[dict[str, str]]) -> None:
    table = Table(box=None, header_style="bold dim")
    for col in ("USER", "ROLE", "SINCE"):
        table.add_column(col)
    for m in members:
        table.add_row(escape(m["user"]), m["role"], ago(m["since"]))
    console.print(table)


@members_app.command("list")
def members_list(org: str = typer.Argument(...), as_json: bool = JSON) -> None:
    """Members of an organization (its members see this)."""
    with Api() as api:
        members = api.get(f"/api/v1/orgs/{org}/members")
    if as_json:
        print_json(members)
        return
    _members_table(members)


@members_app.command("add")
def members_add(
    org: str = typer.Argument(...),
    user: str = typer.Argument(...),
    role: str = typer.Option("read", help=ROLE_HELP),
) -> None:
    """Add a user to an organization, or change their role (the organization's admins)."""
    with Api() as api:
        member = api.put(f"/api/v1/orgs/{org}/members/{user}", json={"role": role})
    ok(f"{escape(member['user'])} is a {member['role']} member of {escape(org)}")


@members_app.command("remove")
def members_remove(org: str = typer.Argument(...), user: str = typer.Argument(...)) -> None:
    """Remove a member (admins), or leave an organization (your own name)."""
    with Api() as api:
        api.delete(f"/api/v1/orgs/{org}/members/{user}")
    ok(f"{escape(user)} is no longer a member of {escape(org)}")


def register(app: typer.Typer) -> None:
    app.add_typer(orgs_app, name="orgs")
    app.add_typer(members_app, name="members")
