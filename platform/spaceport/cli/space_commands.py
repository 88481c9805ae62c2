"""`spaceport create|list|status|logs|restart|pause|resume|stop|start|duplicate|hardware|sleep|
open|delete|embed`.

Each command is one or two calls to the HTTP API (Hugging Face's routes where they exist,
`/api/v1/` otherwise), printed with rich, or as JSON with `--json`.
"""

from __future__ import annotations

import re
import webbrowser
from typing import Any

import typer
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

from spaceport.cli.client import Api, CliError, Exit, space_path
from spaceport.cli.output import ago, console, ok, print_json, stage
from spaceport.cli.waiting import container_of, wait_running

JSON = typer.Option(False, "--json", help="Print JSON for scripts.")
WAIT = typer.Option(False, "--wait", help="Wait until the Space runs again (spinner).")
TIMEOUT = typer.Option(900.0, "--timeout", help="Seconds --wait waits at most.")
SPACE = typer.Argument(..., help="The Space, as owner/name.", metavar="OWNER/NAME")


def whoami_name(api: Api) -> str:
    return str(api.get("/api/whoami-v2")["name"])


def summary(api: Api, space_id: str) -> dict[str, Any]:
    return dict(api.get(f"/api/v1/spaces/{space_path(space_id)}"))


def create(
    space: str = typer.Argument(..., help="name, or owner/name", metavar="[OWNER/]NAME"),
    sdk: str = typer.Option("gradio", help="gradio, streamlit, docker or static."),
    private: bool = typer.Option(False, "--private", help="Only you and admins see it."),
    hardware: str | None = typer.Option(None, help="Hardware flavor, e.g. cpu-basic."),
    as_json: bool = JSON,
) -> None:
    """Create a Space, then print its git remote and how to push a first version."""
    with Api() as api:
        owner, _, name = space.rpartition("/")
        body: dict[str, Any] = {"type": "space", "name": name, "sdk": sdk, "private": private}
        if owner:
            body["organization"] = owner
        if hardware:
            body["hardware"] = hardware
        out = api.post("/api/repos/create", json=body)
        space_id = str(out.get("name") or f"{owner or whoami_name(api)}/{name}")
        remote = f"{api.url}/spaces/{space_id}"
    if as_json:
        print_json({**out, "id": space_id, "gitRemote": remote})
        return
    ok(f"Created [bold]{space_id}[/] ({sdk}{', private' if private else ''})")
    console.print(
        Panel(
            f"git clone {remote}\ncd {name}\n# add app.py, requirements.txt and README.md "
            f"(front matter: sdk: {sdk})\ngit add . && git commit -m 'First version' && git push",
            title="first push (password: an access token)",
            expand=False,
        )
    )


def list_spaces(
    search: str = typer.Option("", "--search", "-s", help="Part of the id or title."),
    stage_filter: str = typer.Option("", "--stage", help="A stage, or ok/busy/error/idle."),
    owner: str = typer.Option("", "--owner", help="Only this owner's Spaces."),
    as_json: bool = JSON,
) -> None:
    """The Spaces you can see, with their live stage."""
    with Api(auth=False) as api:
        params = {"search": search, "stage": stage_filter, "owner": owner}
        rows = api.get("/api/v1/spaces", params={k: v for k, v in params.items() if v})
    if as_json:
        print_json(rows)
        return
    if not rows:
        console.print("[dim]No Spaces match.[/] Create one: spaceport create NAME")
        return
    table = Table(box=None, header_style="bold dim", pad_edge=False)
    for col in ("SPACE", "STAGE", "SDK", "HARDWARE", "LAST BUILD"):
        table.add_column(col)
    for s in rows:
        build = s.get("lastBuild") or {}
        private = " [dim](private)[/]" if s["private"] else ""
        table.add_row(
            f"{escape(s['id'])}{private}",
            stage(s["stage"]),
            s.get("sdk") or "—",
            s["hardware"]["current"] or s["hardware"]["requested"] or "—",
            ago(build.get("finishedAt") or build.get("createdAt")),
        )
    console.print(table)


def status(
    space: str = SPACE, wait: bool = WAIT, timeout: float = TIMEOUT, as_json: bool = JSON
) -> None:
    """A Space's stage, container, commit and last build (--wait: until it runs)."""
    with Api(auth=False) as api:
        s = (
            wait_running(api, space, timeout=timeout, quiet=as_json)
            if wait
            else summary(api, space)
        )
    if as_json:
        print_json(s)
        return
    show(s)


def show(s: dict[str, Any]) -> None:
    build = s.get("lastBuild") or {}
    container = s.get("container") or {}
    lines = [
        f"[bold]{escape(s['title'])}[/]  ({escape(s['id'])})",
        f"stage      {stage(s['stage']).markup} [dim]({s['stage']})[/]  "
        f"{escape(s.get('message') or '')}",
        f"app        {s['appUrl']}",
        f"container  {container.get('id', '—')}",
        f"commit     {(s.get('sha') or '—')[:12]}",
        f"hardware   {s['hardware']['current'] or s['hardware']['requested']}",
        f"last build {build.get('status', '—')} {ago(build.get('finishedAt'))}",
    ]
    if s.get("errorMessage"):
        lines.append(f"[red]error[/]      {escape(s['errorMessage'])}")
    console.print(Panel("\n".join(lines), expand=False))


def logs(
    space: str = SPACE,
    build: bool = typer.Option(False, "--build", help="The latest build's log (default)."),
    run: bool = typer.Option(False, "--run", help="The app container's output."),
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep streaming new lines."),
) -> None:
    """Print a Space's build or run log; -f follows it live."""
    if build and run:
        raise CliError("choose one of --build or --run", Exit.USAGE)
    kind = "run" if run else "build"
    with Api(auth=False) as api:
        path = f"/api/spaces/{space_path(space)}/logs/{kind}"
        # Without -f, stop once the server has nothing more to say for a moment.
        idle = None if follow else 2.0
        for event in api.stream_events(path, timeout=idle):
            stamp = str(event.get("timestamp") or "")[11:19]
            text = event.get("data")
            text = (text if isinstance(text, str) else str(text)).rstrip("\n")
            console.print(f"[dim]{stamp}[/] {escape(text)}", highlight=False, soft_wrap=True)


def _action(
    space: str,
    path: str,
    done: str,
    wait: bool,
    timeout: float,
    as_json: bool,
    base: str = "/api/spaces",
    **kw: Any,
) -> None:
    """POST `{base}/{space}/{path}` (Hugging Face's routes; `/api/v1/spaces` for native ones)."""
    with Api() as api:
        before = container_of(summary(api, space)) if wait else None
        api.post(f"{base}/{space_path(space)}/{path}", **kw)
        if not as_json:
            ok(done)
        if wait:
            s = wait_running(api, space, replacing=before, timeout=timeout, quiet=as_json)
            if as_json:
                print_json(s)
            else:
                ok(f"{space} is RUNNING on container {container_of(s)}")
        elif as_json:
            print_json(summary(api, space))


def restart(
    space: str = SPACE,
    factory: bool = typer.Option(False, "--factory", help="Rebuild without cache first."),
    wait: bool = WAIT,
    timeout: float = TIMEOUT,
    as_json: bool = JSON,
) -> None:
    """Restart a Space (same image, new container); --factory rebuilds it from scratch."""
    what = "factory rebuild" if factory else "restart"
    params = {"factory": "true"} if factory else None
    _action(space, "restart", f"{what} of {space} requested", wait, timeout, as_json, params=params)


def pause(space: str = SPACE, as_json: bool = JSON) -> None:
    """Pause a Space: stopped, and not woken by visitors, until you resume it."""
    _action(space, "pause", f"{space} paused", False, 0, as_json)


def resume(
    space: str = SPACE, wait: bool = WAIT, timeout: float = TIMEOUT, as_json: bool = JSON
) -> None:
    """Start a paused or stopped Space again."""
    _action(space, "restart", f"{space} resuming", wait, timeout, as_json)


def stop(space: str = SPACE, as_json: bool = JSON) -> None:
    """Stop a Space: no container, no GPU, not woken by visitors, until you start it."""
    _action(space, "stop", f"{space} stopped", False, 0, as_json, base="/api/v1/spaces")


def start(
    space: str = SPACE, wait: bool = WAIT, timeout: float = TIMEOUT, as_json: bool = JSON
) -> None:
    """Start a stopped (or paused) Space again."""
    _action(space, "start", f"{space} starting", wait, timeout, as_json, base="/api/v1/spaces")


def duplicate(
    space: str = SPACE,
    new_id: str | None = typer.Argument(
        None,
        help="The copy, as [owner/]name (default: your own Space of the same name).",
        metavar="[[OWNER/]NAME]",
    ),
    private: bool | None = typer.Option(
        None, "--private/--public", help="The copy's visibility (default: the source's)."
    ),
    wait: bool = typer.Option(False, "--wait", help="Wait until the copy runs (spinner)."),
    timeout: float = TIMEOUT,
    as_json: bool = JSON,
) -> None:
    """Copy a Space's files and variables (never its secrets) into a new Space, which builds."""
    space_path(space)
    source_name = space.partition("/")[2]
    with Api() as api:
        owner, _, name = (new_id or source_name).rpartition("/")
        target = f"{owner or whoami_name(api)}/{name}"
        if target == space:
            raise CliError(
                f"{space} is yours already: name the copy (spaceport duplicate {space} NEW_NAME)",
                Exit.USAGE,
            )
        space_path(target)
        body: dict[str, Any] = {"repository": target}
        if private is not None:
            body["private"] = private
        out = api.post(f"/api/spaces/{space_path(space)}/duplicate", json=body)
        copy = str(out.get("id") or target)
        if not as_json:
            ok(f"Duplicated {space} as [bold]{copy}[/]: it builds now")
            console.print(f"git clone {api.url}/spaces/{copy}")
        s = wait_running(api, copy, timeout=timeout, quiet=as_json) if wait else summary(api, copy)
    if as_json:
        print_json(s)
    elif wait:
        ok(f"{copy} is RUNNING at {s['appUrl']}")


def hardware(
    space: str = SPACE,
    flavor: str | None = typer.Argument(None, help="The flavor to switch to; none: list them."),
    wait: bool = WAIT,
    timeout: float = TIMEOUT,
    as_json: bool = JSON,
) -> None:
    """Show the hardware flavors (and what is free), or move a Space to one."""
    if flavor:
        body = {"flavor": flavor}
        _action(space, "hardware", f"{space} → {flavor}", wait, timeout, as_json, json=body)
        return
    with Api() as api:
        current = summary(api, space)["hardware"]["requested"]
        flavors = api.get("/api/v1/hardware")
    if as_json:
        print_json({"current": current, "flavors": flavors})
        return
    table = Table(box=None, header_style="bold dim")
    for col in ("", "FLAVOR", "CPU", "MEMORY", "GPU", "AVAILABLE"):
        table.add_column(col)
    for f in flavors:
        gpu = f"{f['gpus']} x {f['gpuKind']}" if f["gpus"] else "—"
        mark = "[green]●[/]" if f["name"] == current else ""
        avail = "[green]yes[/]" if f["available"] else f"[dim]{f['note']}[/]"
        table.add_row(mark, f["name"], str(f["cpus"]), f["memory"], gpu, avail)
    console.print(table)


DURATION = re.compile(r"^(\d+)\s*([smhd]?)$")
UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_sleep(value: str) -> int:
    if value.lower() in ("never", "off", "-1", "0"):
        return -1
    match = DURATION.match(value.strip().lower())
    if not match:
        raise CliError(
            f"sleep time must be like 300, 15m, 2h, 1d or never (got {value!r})", Exit.USAGE
        )
    return int(match.group(1)) * UNITS[match.group(2)]


def sleep(
    space: str = SPACE,
    after: str = typer.Argument(..., help="Idle time before sleeping: 300, 15m, 2h, never."),
    as_json: bool = JSON,
) -> None:
    """Set how long a Space may sit idle before it sleeps (the next visit wakes it)."""
    seconds = parse_sleep(after)
    label = "never sleeps" if seconds < 0 else f"sleeps after {seconds} s idle"
    _action(space, "sleeptime", f"{space} {label}", False, 0, as_json, json={"seconds": seconds})


def open_space(
    space: str = SPACE,
    page: bool = typer.Option(False, "--page", help="Open the console page, not the app."),
) -> None:
    """Open the app (or its console page) in your browser; prints the URL too."""
    with Api(auth=False) as api:
        s = summary(api, space)
    url = s["pageUrl"] if page else s["appUrl"]
    console.print(url)
    webbrowser.open(url)


def delete(
    space: str = SPACE,
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Delete a Space: app, images, storage, routes and repo. Asks you to type its id."""
    owner, _, name = space.partition("/")
    space_path(space)
    if not yes:
        typed = typer.prompt(f"Type {space} to delete it for good")
        if typed.strip() != space:
            raise CliError("confirmation did not match: nothing deleted", Exit.USAGE)
    with Api() as api:
        api.delete("/api/repos/delete", json={"type": "space", "name": name, "organization": owner})
    ok(f"deleted {space}")


def embed(space: str = SPACE, as_json: bool = JSON) -> None:
    """The snippets that embed a Space's app in another page (iframe, web component)."""
    with Api(auth=False) as api:
        try:
            snippets = dict(api.get(f"/api/v1/spaces/{space_path(space)}/embed"))
        except CliError as exc:
            if exc.code is not Exit.NOT_FOUND:
                raise
            url = summary(api, space)["appUrl"]  # raises NOT_FOUND for an unknown Space
            snippets = {
                "url": url,
                "iframe": f'<iframe src="{url}" frameborder="0" width="850" height="450"></iframe>',
            }
    if as_json:
        print_json(snippets)
        return
    for key, value in snippets.items():
        if isinstance(value, str) and "<" in value:
            console.print(Panel(escape(value), title=key, expand=False))
        elif isinstance(value, str):
            console.print(f"[bold]{key}[/]: {value}")


def register(app: typer.Typer) -> None:
    app.command()(create)
    app.command("list")(list_spaces)
    app.command()(status)
    app.command()(logs)
    app.command()(restart)
    app.command()(pause)
    app.command()(resume)
    app.command()(stop)
    app.command()(start)
    app.command()(duplicate)
    app.command()(hardware)
    app.command()(sleep)
    app.command("open")(open_space)
    app.command()(delete)
    app.command()(embed)
