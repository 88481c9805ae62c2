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
        if u.get("deactivatedAt"):
            role += " [red](deactivated)[/]"
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


@users_app.command("invite")
def users_invite(
    org: str | None = typer.Option(None, "--org", help="The organization they join."),
    role: str | None = typer.Option(
        None, "--role", help="Their role there: read (default), contributor, write, admin."
    ),
    days: int | None = typer.Option(None, "--days", help="How long the link works."),
    as_json: bool = JSON,
) -> None:
    """A one-time sign-up link (administrators; an organization's admins: --org theirs)."""
    body = {"org": org, "role": role, "days": days}
    with Api() as api:
        invitation = api.post("/api/v1/invitations", json=body)
    if as_json:
        print_json(invitation)
        return
    where = f" to join {invitation['org']} as {invitation['role']}" if invitation["org"] else ""
    ok(f"Invitation {invitation['id']}{where}, until {invitation['expiresAt']}; send this link:")
    console.print(invitation["url"], highlight=False, soft_wrap=True)


@users_app.command("invitations")
def users_invitations(as_json: bool = JSON) -> None:
    """The invitations you may manage, and whether each is pending, used or expired."""
    with Api() as api:
        rows = api.get("/api/v1/invitations")
    if as_json:
        print_json(rows)
        return
    table = Table(box=None, header_style="bold dim")
    for col in ("ID", "ORG", "ROLE", "BY", "STATUS", "USED BY", "EXPIRES"):
        table.add_column(col)
    for i in rows:
        table.add_row(
            str(i["id"]),
            escape(i["org"] or "—"),
            i["role"] or "—",
            escape(i["createdBy"]),
            i["status"],
            escape(i["usedBy"] or "—"),
            i["expiresAt"],
        )
    console.print(table)


@users_app.command("uninvite")
def users_uninvite(
    invitation_id: int = typer.Argument(..., help="From `users invitations`."),
) -> None:
    """Revoke an invitation link that was not used yet."""
    with Api() as api:
        api.delete(f"/api/v1/invitations/{invitation_id}")
    ok(f"Revoked invitation {invitation_id}")


@users_app.command("deactivate")
def users_deactivate(name: str = typer.Argument(..., help="User name.")) -> None:
    """Stop a user at once (tokens, console sessions, app cookies); their Spaces keep running."""
    with Api() as api:
        api.post(f"/api/v1/users/{name}/deactivate")
    ok(f"Deactivated [bold]{escape(name)}[/]: `spaceport users activate {escape(name)}` undoes it")


@users_app.command("activate")
def users_activate(name: str = typer.Argument(..., help="User name.")) -> None:
    """Let a deactivated user back in."""
    with Api() as api:
        api.post(f"/api/v1/users/{name}/activate")
    ok(f"Activated [bold]{escape(name)}[/]")


@users_app.command("delete")
def users_delete(
    name: str = typer.Argument(..., help="User name."),
    transfer_to: str | None = typer.Option(
        None, "--transfer-to", help="A user or organization to give their Spaces to."
    ),
    delete_spaces: bool = typer.Option(
        False, "--delete-spaces", help="Delete their Spaces too (asks you to type their name)."
    ),
    confirm: str | None = typer.Option(
        None, "--confirm", help="Their name again, for --delete-spaces without a prompt."
    ),
    as_json: bool = JSON,
) -> None:
    """Delete a user. Their Spaces go to --transfer-to, or are deleted with --delete-spaces;
    with neither, a user who owns Spaces is not deleted (the Spaces are listed)."""
    params: dict[str, str] = {}
    if transfer_to:
        params["transferTo"] = transfer_to
    if delete_spaces:
        if confirm is None:
            if not sys.stdin.isatty():
                raise CliError("--delete-spaces: confirm with --confirm NAME", Exit.USAGE)
            confirm = str(typer.prompt(f"Type {name} to delete their Spaces too")).strip()
        params["deleteSpaces"] = confirm
    with Api() as api:
        out = api.delete(f"/api/v1/users/{name}", params=params)
    if as_json:
        print_json(out)
        return
    ok(f"Deleted user [bold]{escape(name)}[/]")
    for old, new in out["moved"].items():
        console.print(f"  {escape(old)} → {escape(new)}")
    for gone in out["deletedSpaces"]:
        console.print(f"  {escape(gone)} [red]deleted[/]")


@tokens_app.command("list")
def tokens_list(as_json: bool = JSON) -> None:
    """Your tokens and console sessions (values are never shown again)."""
    with Api() as api:
        tokens = api.get("/api/v1/tokens")
    if as_json:
        print_json(tokens)
        return
    table = Table(box=None, header_style="bold dim")
    for col in ("ID", "NAME", "ROLE", "SCOPE", "KIND", "CREATED", "EXPIRES", "LAST USED"):
        table.add_column(col)
    for t in tokens:
        table.add_row(
            str(t["id"]),
            escape(t["name"]),
            t["role"],
            escape(", ".join(t["scope"])) if t.get("scope") is not None else "all",
            t["kind"],
            ago(t["createdAt"]),
            t.get("expiresAt") or "never",
            ago(t["lastUsedAt"]),
        )
    console.print(table)


def expiry_body(expires: str | None) -> dict[str, object]:
    """`--expires 30d` (days from now) or `--expires 2027-01-31` (that day, UTC)."""
    if not expires:
        return {}
    text = expires.strip().lower()
    if text.endswith("d") and text[:-1].isdigit():
        return {"expiresInDays": int(text[:-1])}
    if text.isdigit():
        return {"expiresInDays": int(text)}
    return {"expiresAt": expires.strip()}


@tokens_app.command("create")
def tokens_create(
    name: str = typer.Argument(..., help="What the token is for."),
    role: str = typer.Option("read", help="read (clone, view, logs) or write (push, manage)."),
    scope: list[str] = typer.Option(
        [],
        "--scope",
        help="Only this: space:owner/name or org:name (repeat for more); none: all you reach.",
    ),
    expires: str | None = typer.Option(
        None, "--expires", help="30d (days from now) or 2027-01-31 (the last day it works)."
    ),
    as_json: bool = JSON,
) -> None:
    """Create a token; its value is printed once."""
    body: dict[str, object] = {"name": name, "role": role, **expiry_body(expires)}
    if scope:
        body["scope"] = scope
    with Api() as api:
        token = api.post("/api/v1/tokens", json=body)
    if as_json:
        print_json(token)
        return
    limits = f", only {', '.join(token['scope'])}" if token.get("scope") else ""
    until = f", until {token['expiresAt']}" if token.get("expiresAt") else ""
    ok(
        f"Created {token['role']} token '{escape(token['name'])}' (id {token['id']}{limits}"
        f"{until}); copy it now:"
    )
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
