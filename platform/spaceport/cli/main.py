"""The `spaceport` command. Operator commands live here; user commands talk to the HTTP API.

User commands (account_commands, space_commands, variable_commands) use only the public HTTP
API, with `--url`/`SPACEPORT_URL` and the token saved by `spaceport login`; operator commands
(up, down, api, worker, proxy, images, doctor) act on this machine's node.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.markup import escape

from spaceport.cli import (
    account_commands,
    audit_commands,
    cluster_commands,
    domain_commands,
    org_commands,
    quota_commands,
    space_commands,
    variable_commands,
)
from spaceport.cli.client import EXIT_HELP, TARGET, CliError
from spaceport.cli.doctor import doctor

if TYPE_CHECKING:
    from spaceport.settings import Settings


def get_settings() -> Settings:
    """The node's settings, imported on use: user commands start faster without them."""
    from spaceport.settings import get_settings as load

    return load()


class SpaceportTyper(typer.Typer):
    """Typer that turns a `CliError` into one red line and its exit code, not a traceback."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().__call__(*args, **kwargs)
        except CliError as exc:
            Console(stderr=True).print(
                f"[red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True
            )
            sys.exit(int(exc.code))


app = SpaceportTyper(
    help="Spaceport: self-hosted ML demo apps.",
    epilog=EXIT_HELP,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
images_app = typer.Typer(help="Base images every app builds on.")
app.add_typer(images_app, name="images")
console = Console()


@app.callback()
def main(
    url: str | None = typer.Option(
        None, "--url", envvar="SPACEPORT_URL", help="Server URL (default: from `login`)."
    ),
    token: str | None = typer.Option(
        None, "--token", envvar="SPACEPORT_TOKEN", help="Access token (default: from `login`)."
    ),
) -> None:
    """Spaceport: self-hosted ML demo apps."""
    TARGET.url, TARGET.token = url, token


account_commands.register(app)
space_commands.register(app)
variable_commands.register(app)
domain_commands.register(app)
cluster_commands.register(app)
org_commands.register(app)
audit_commands.register(app)
quota_commands.register(app)
app.command()(doctor)


@app.command()
def api() -> None:
    """Run the control plane API (behind the proxy)."""
    import uvicorn

    settings = get_settings()
    uvicorn.run(
        "spaceport.api.app:create_app",
        factory=True,
        host=settings.api_host,
        port=settings.api_port,
        proxy_headers=True,
        log_level="info",
    )


@app.command()
def worker(
    concurrency: int = typer.Option(2, help="Builds run at once."),
    builds_only: bool = typer.Option(
        False,
        "--builds-only",
        help="A build worker on another machine: builds on this machine's engine, fetches "
        "repositories over git HTTP (SPACEPORT_URL, SPACEPORT_ADMIN_TOKEN) and base images "
        "from SPACEPORT_REGISTRY, pushes there; the control plane deploys.",
    ),
) -> None:
    """Run a builder worker (Celery) in the foreground."""
    import os

    from spaceport.node import isolate_builds, worker_argv

    settings = get_settings()
    if builds_only and not (settings.runtime == "swarm" and settings.registry):
        console.print(
            "[red]error:[/] a build worker elsewhere pushes what it builds to the cluster's "
            "registry: set SPACEPORT_RUNTIME=swarm and SPACEPORT_REGISTRY as on the control plane"
        )
        raise typer.Exit(2)
    isolate_builds(settings, console.print)
    argv = worker_argv(concurrency, builds_only=builds_only)
    os.execv(argv[0], argv)


@app.command()
def up(
    examples: Path = typer.Option(Path("examples"), help="Example Spaces to push."),
    no_examples: bool = typer.Option(False, "--no-examples"),
    wait: bool = typer.Option(True, help="Wait until every Space settles (runs, or fails)."),
) -> None:
    """Start every component that is not running, then push the examples."""
    from spaceport.node import up as node_up
    from spaceport.supervisor import StartError

    settings = get_settings()
    try:
        report = node_up(
            settings,
            lambda m: console.print(f"[cyan]•[/] {m}"),
            examples=None if no_examples else examples,
            wait=wait,
        )
    except StartError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from exc
    console.print(f"\n[bold green]Spaceport is up.[/] Console: [link]{report.console_url}[/]")
    if report.admin_token_file:
        console.print(f"Admin token: {report.admin_token_file}")
    for space_id, url in report.apps.items():
        stage = report.stages.get(space_id, "")
        color = "green" if stage == "RUNNING" else "yellow"
        console.print(f"  {space_id}: {url} [{color}]{stage}[/]")
    for space_id, stage in report.stages.items():
        if space_id not in report.apps:
            console.print(f"  {space_id}: {stage}")
    if report.apps and not wait:
        console.print("Example apps are building; each URL shows its progress until it runs.")
    held = ("RUNNING", "PAUSED", "STOPPED", "SLEEPING")  # what its owner (or idleness) chose
    bad = {k: v for k, v in report.stages.items() if v not in held}
    if bad:
        console.print(f"[yellow]Not running:[/] {bad}; see {report.console_url}/spaces/<id>")


@app.command()
def down() -> None:
    """Stop what `spaceport up` started; the data dir stays."""
    from spaceport.node import down as node_down

    node_down(get_settings(), lambda m: console.print(f"[cyan]•[/] {m}"))


@app.command()
def resolver() -> None:
    """Run the resolver that tells Caddy (SPACEPORT_PROXY=caddy) where each app is (UDP, on the
    API's address)."""
    from spaceport.proxy import resolver as dns

    settings = get_settings()
    try:
        sock = dns.bind(settings)
    except OSError as exc:
        console.print(
            f"[red]error:[/] cannot listen on udp {dns.resolver_address(settings)}: {exc}"
        )
        raise typer.Exit(1) from exc
    dns.serve(settings, sock)


@app.command()
def proxy(
    foreground: bool = typer.Option(
        False,
        "--foreground",
        help="Become the proxy (nginx only), for a service manager or a compose service.",
    ),
    follow: bool = typer.Option(
        False,
        "--follow",
        help="A proxy on another machine (nginx): serve the route table the control plane "
        "publishes in Redis (SPACEPORT_REDIS_URL), status pages from its API "
        "(SPACEPORT_API_HOST/PORT), until stopped. No database needed.",
    ),
) -> None:
    """Start the proxy (Caddy and its resolver, or nginx) for this node unless it runs, and load
    every app's route from the database."""
    import asyncio

    from spaceport.lifecycle.proxy_routes import sync_routes
    from spaceport.proxy import proxy_process
    from spaceport.proxy.resolver import ensure_resolver

    settings = get_settings()
    if follow:
        import signal
        import threading

        from spaceport.proxy.follower import follow as follow_table

        if settings.proxy != "nginx":
            console.print("[red]error:[/] --follow runs nginx (SPACEPORT_PROXY=nginx)")
            raise typer.Exit(2)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            follow_table(settings, lambda m: console.print(f"[green]✓[/] {m}"), stop)
        except KeyboardInterrupt:
            pass
        finally:
            asyncio.run(proxy_process(settings).stop())
        return
    if foreground:
        from spaceport.proxy.nginx import NginxProcess

        if settings.proxy != "nginx":
            console.print(
                "[red]error:[/] --foreground runs nginx (SPACEPORT_PROXY=nginx); run Caddy "
                "itself for the caddy backend (compose.yaml shows how)"
            )
            raise typer.Exit(2)
        try:
            NginxProcess(settings).exec_foreground()
        except Exception as exc:
            console.print(f"[red]error:[/] {exc}")
            raise typer.Exit(1) from exc
    proxy = proxy_process(settings)
    started = not proxy.is_running()
    try:
        if settings.proxy == "caddy":
            ensure_resolver(settings, lambda msg: console.print(f"[green]✓[/] {msg}"))
        asyncio.run(proxy.start())
        routes = sync_routes(settings)
    except Exception as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from exc
    verb = "started" if started else "already running"
    console.print(
        f"[green]✓[/] {proxy.name} {verb} on {settings.listen}: {routes} app route(s) loaded"
    )


@images_app.command("build")
def images_build(
    python: list[str] = typer.Option([], "--python", help="Python versions (default: default)."),
    gpu: bool = typer.Option(False, help="Also build the CUDA variant."),
    offline: bool = typer.Option(False, help="Bootstrap from Debian packages, no registry."),
    force: bool = typer.Option(False, help="Rebuild even if present."),
) -> None:
    """Build the base images (pulling parents, or offline from Debian packages)."""
    from spaceport_builder.base_images import BaseImageError, build_base_images

    settings = get_settings()
    try:
        build_base_images(
            settings, python or [settings.default_python], gpu, offline or None, force, print
        )
    except BaseImageError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from exc


if __name__ == "__main__":
    app()
