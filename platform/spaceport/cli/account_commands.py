"""`spaceport login|logout|whoami`, `spaceport users ...`, `spaceport tokens ...`.

`login` checks the token against the server before saving it, so a typo fails now rather
than at the next command.
"""

from __future__ import annotations

import sys

import typer
from rich.markup import escape
from rich.table import Table

from spaceport.cli import credentials
from spaceport.cli.client import TARGET, Api, CliError, Exit
from spaceport.cli.output import ago, console, ok, print_json
from spaceport.cli.space_commands import JSON

users_app = typer.Typer(help="Users (administrators create them).", no_args_is_help=True)
tokens_app = typer.Typer(help="Your access tokens.", no_args_is_help=True)


def login(
    token: str | None = typer.Option(
        None, "--token", "-t", help="The token; '-' reads stdin; none: prompt (hidden)."
    ),
) -> None:
    """Sign in to a server with an access token and remember it for later commands."""
    value = token or TARGET.token
    if value == "-":
        value = sys.stdin.readline().strip()
    if not value:
        if not sys.stdin.isatty():
            raise CliError("no token given: use --token TOKEN or --token - (stdin)", Exit.USAGE)
        value = str(typer.prompt("Access token", hide_input=True)).strip()
    TARGET.token = value
    with Api() as api:
        me = api.get("/api/whoami-v2")
        url = api.url
    role = me.get("auth", {}).get("accessToken", {}).get("role", "?")
    where = credentials.save(url, value, me["name"])
    ok(f"Signed in to {url} as [bold]{me['name']}[/] ({role} token); saved in {where}")


def logout() -> None:
    """Forget the saved token of this server (the token itself stays valid: revoke it too)."""
    url = TARGET.resolved_url()
    if credentials.forget(url):
        ok(f"Signed out of {url}")
    else:
        console.print(f"[dim]No saved sign-in for {url}.[/]")


def whoami(as_json: bool = JSON) -> None:
    """Who the current token belongs to, and on which server."""
    with Api() as api:
        me = api.get("/api/whoami-v2")
        url = api.url
    if as_json:
        print_json({**me, "url": url})
        return
    token = me.get("auth", {}).get("accessToken", {})
    admin = " [bold magenta]admin[/]" if me.get("isAdmin") else ""
    console.print(f"[bold]{me['name']}[/]{admin} on {url} ({token.get('role', '?')} token)")


@users_app.command("list")
def users_list(as_json: bool = JSON) -> None:
    """Every user (administrators only)."""
    with Api() as api:
        users = api.get("/api/v1/users")
    if as_json:
        print_json(users)
        return
    table = Table(box=None, header_style="bold dim")
    for col in ("USER", "ROLE", "SPACES", "JOINED"):
        table.add_column(col)
    for u in users:
        role = "[magenta]admin[/]" if u["isAdmin"] else "user"
        table.add_row(escape(u["name"]), role, str(u["spaces"]), ago(u["createdAt"]))
    console.print(table)


@users_app.command("create")
def users_create(
    name: str = typer.Argument(..., help="User name."),
    admin: bool = typer.Option(False, "--admin", help="Make them an administrator."),
    fullname: str | None = typer.Option(None, help="Their full name."),
    role: str = typer.Option("write", help="Role of their first token: read or write."),
    as_json: bool = JSON,
) -> None:
    """Create a user; prints their first token once: hand it to them."""
    with Api() as api:
        body = {"name": name, "admin": admin, "fullname": fullname, "token_role": role}
        user = api.post("/api/v1/users", json=body)
    if as_json:
        print_json(user)
        return
    ok(f"Created user [bold]{user['name']}[/]{' (admin)' if user['isAdmin'] else ''}")
    console.print(f"Their token (shown once): [bold]{user['token']}[/]")


@tokens_app.command("list")
def tokens_list(as_json: bool = JSON) -> None:
    """Your tokens and console sessions (values are never shown again)."""
    with Api() as api:
        tokens = api.get("/api/v1/tokens")
    if as_json:
        print_json(tokens)
        return
    table = Table(box=None, header_style="bold dim")
    for col in ("ID", "NAME", "ROLE", "KIND", "CREATED", "LAST USED"):
        table.add_column(col)
    for t in tokens:
        table.add_row(
            str(t["id"]),
            escape(t["name"]),
            t["role"],
            t["kind"],
            ago(t["createdAt"]),
            ago(t["lastUsedAt"]),
        )
    console.print(table)


@tokens_app.command("create")
def tokens_create(
    name: str = typer.Argument(..., help="What the token is for."),
    role: str = typer.Option("read", help="read (clone, view, logs) or write (push, manage)."),
    as_json: bool = JSON,
) -> None:
    """Create a token; its value is printed once."""
    with Api() as api:
        token = api.post("/api/v1/tokens", json={"name": name, "role": role})
    if as_json:
        print_json(token)
        return
    ok(f"Created {token['role']} token '{token['name']}' (id {token['id']}); copy it now:")
    console.print(token["token"], highlight=False)


@tokens_app.command("revoke")
def tokens_revoke(token_id: int = typer.Argument(..., help="The id from `tokens list`.")) -> None:
    """Revoke a token: it stops working at once."""
    with Api() as api:
        out = api.delete(f"/api/v1/tokens/{token_id}")
    ok(f"Revoked '{escape(out['revoked']['name'])}'")


def register(app: typer.Typer) -> None:
    app.command()(login)
    app.command()(logout)
    app.command()(whoami)
    app.add_typer(users_app, name="users")
    app.add_typer(tokens_app, name="tokens")
