"""`spaceport quota show|set|list`: a namespace's limits and usage (services/quotas.py).

Administrators set limits; a user sees their own and their organizations'. `set` changes only
the limits it is given; `none` (or `unlimited`) clears one.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import typer
from rich.markup import escape
from rich.table import Table

from spaceport.cli.client import Api, CliError, Exit
from spaceport.cli.output import console, ok, print_json
from spaceport.cli.space_commands import JSON

quota_app = typer.Typer(help="Quotas: limits per user and organization.", no_args_is_help=True)
NAMESPACE = typer.Argument(..., help="A user or organization name.", metavar="NAMESPACE")

# (API key, label, unit) in the order people read them.
ROWS = (
    ("spaces", "Spaces", ""),
    ("cpu", "CPUs (awake Spaces)", ""),
    ("memory_gb", "Memory (awake Spaces)", " GB"),
    ("gpus", "GPUs", ""),
    ("storage_gb", "Storage", " GB"),
    ("builds_per_hour", "Builds (last hour)", ""),
)
CLEAR = ("none", "unlimited", "null", "")


def _num(value: float | None) -> str:
    if value is None:
        return "unlimited"
    if 0 < value < 0.01:
        return "<0.01"
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _who(used_by: Any) -> str:
    if isinstance(used_by, list):
        return ", ".join(used_by)
    return ", ".join(f"{k} ({_num(v)})" for k, v in (used_by or {}).items())


def _show(report: dict[str, Any]) -> None:
    table = Table(box=None, header_style="bold dim", title=f"Quota of {report['namespace']}")
    for col in ("LIMIT", "USED", "MAX", "USED BY"):
        table.add_column(col)
    for key, label, unit in ROWS:
        used, limit = report["usage"][key], report["limits"][key]
        over = limit is not None and used >= limit
        style = "bold red" if over else ""
        table.add_row(
            label,
            f"[{style}]{_num(used)}{unit}[/]" if style else f"{_num(used)}{unit}",
            _num(limit) + (unit if limit is not None else ""),
            escape(_who(report["usedBy"][key])),
        )
    console.print(table)


def _parse(option: str, value: str) -> float | None:
    if value.strip().lower() in CLEAR:
        return None
    try:
        number = float(value)
    except ValueError:
        raise CliError(
            f"{option}: a number, or 'none' for unlimited (got {value!r})", Exit.USAGE
        ) from None
    if number < 0:
        raise CliError(f"{option}: must be 0 or more (got {value})", Exit.USAGE)
    return number


@quota_app.command("show")
def show(namespace: str = NAMESPACE, as_json: bool = JSON) -> None:
    """A namespace's limits and what uses them (yours, your organizations'; admins: any)."""
    with Api() as api:
        report = api.get(f"/api/v1/quotas/{quote(namespace, safe='')}")
    if as_json:
        print_json(report)
    else:
        _show(report)


def _opt(flag: str, what: str) -> Any:
    return typer.Option(None, flag, help=f"{what}; 'none' clears the limit.", metavar="N")


@quota_app.command("set")
def set_quota(
    namespace: str = NAMESPACE,
    spaces: str | None = _opt("--spaces", "How many Spaces"),
    cpu: str | None = _opt("--cpu", "CPUs of awake Spaces"),
    memory_gb: str | None = _opt("--memory-gb", "Memory (GB) of awake Spaces"),
    gpus: str | None = _opt("--gpus", "GPUs held"),
    storage_gb: str | None = _opt("--storage-gb", "Storage (GB): /data and repositories"),
    builds_per_hour: str | None = _opt("--builds-per-hour", "Builds started per hour"),
    as_json: bool = JSON,
) -> None:
    """Set a namespace's limits (administrators); the ones not given keep their value."""
    given = {
        "spaces": spaces,
        "cpu": cpu,
        "memory_gb": memory_gb,
        "gpus": gpus,
        "storage_gb": storage_gb,
        "builds_per_hour": builds_per_hour,
    }
    body: dict[str, Any] = {}
    for key, value in given.items():
        if value is None:
            continue
        number = _parse("--" + key.replace("_", "-"), value)
        whole = key in ("spaces", "gpus", "builds_per_hour")
        if whole and number is not None and number != int(number):
            raise CliError(f"--{key.replace('_', '-')}: a whole number (got {value})", Exit.USAGE)
        body[key] = int(number) if whole and number is not None else number
    if not body:
        raise CliError("nothing to set: give at least one limit, e.g. --spaces 3", Exit.USAGE)
    with Api() as api:
        report = api.put(f"/api/v1/quotas/{quote(namespace, safe='')}", json=body)
    if as_json:
        print_json(report)
        return
    ok(f"Quota of {namespace} set")
    _show(report)


@quota_app.command("list")
def list_quotas(as_json: bool = JSON) -> None:
    """Every namespace's limits and usage (administrators)."""
    with Api() as api:
        reports = api.get("/api/v1/quotas")
    if as_json:
        print_json(reports)
        return
    table = Table(box=None, header_style="bold dim")
    table.add_column("NAMESPACE")
    for _, label, _ in ROWS:
        table.add_column(label.split(" (")[0].upper())
    for r in reports:
        cells = [
            f"{_num(r['usage'][k])}/{_num(r['limits'][k])}"
            if r["limits"][k] is not None
            else _num(r["usage"][k])
            for k, _, _ in ROWS
        ]
        table.add_row(escape(r["namespace"]), *cells)
    console.print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(quota_app, name="quota")
