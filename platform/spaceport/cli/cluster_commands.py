"""`spaceport nodes ...` (the cluster's machines, through the API) and `spaceport cluster ...`
(a development cluster on this machine: spaceport.devcluster).

`nodes` is for administrators of any Spaceport, one machine or a Swarm; `cluster` starts,
breaks and removes a real Swarm of Docker engines on this machine, for development, tests and
operators trying failover before they build the real thing (docs/operations.md).
"""

from __future__ import annotations

import json

import typer
from rich.filesize import decimal
from rich.markup import escape
from rich.table import Table

from spaceport.cli.client import Api, CliError, Exit
from spaceport.cli.output import console, ok, print_json
from spaceport.cli.space_commands import JSON

nodes_app = typer.Typer(help="The machines apps run on (administrators).", no_args_is_help=True)
cluster_app = typer.Typer(
    help="A development Swarm on this machine (root): make cluster, failover on demand.",
    no_args_is_help=True,
)


@nodes_app.command("list")
def nodes_list(as_json: bool = JSON) -> None:
    """Each node: state, CPUs, memory, GPUs free or held, the Spaces on it."""
    with Api() as api:
        nodes = api.get("/api/v1/nodes")
    if as_json:
        print_json(nodes)
        return
    table = Table(box=None, header_style="bold dim")
    for col in ("NODE", "STATE", "ROLE", "CPUS", "MEMORY", "GPUS FREE", "SPACES"):
        table.add_column(col)
    for n in nodes:
        state = n.get("state", "ready")
        color = "green" if state == "ready" else "red"
        if n.get("availability", "active") != "active":
            state = f"{state} ({n['availability']})"
        gpus = n.get("gpus") or []
        free = sum(1 for g in gpus if not g.get("heldBy"))
        table.add_row(
            escape(n["name"]),
            f"[{color}]{escape(state)}[/]",
            escape(str(n.get("role", ""))),
            str(n.get("cpus", "")),
            decimal(n["memoryBytes"]) if n.get("memoryBytes") else "",
            f"{free}/{len(gpus)}",
            escape(", ".join(n.get("spaces") or [])) or str(n.get("apps", 0)),
        )
    console.print(table)


storage_app = typer.Typer(help="A Space's persistent storage (/data).", no_args_is_help=True)


@storage_app.command("move")
def storage_move(
    space: str = typer.Argument(..., help="owner/name"),
    node: str = typer.Argument(..., help="The node to move /data to (spaceport nodes list)."),
) -> None:
    """Cluster mode: copy a paused or stopped Space's /data to another node; it runs there
    from its next start."""
    owner, _, name = space.partition("/")
    with Api() as api:
        api.post(f"/api/v1/spaces/{owner}/{name}/storage/move", json={"node": node})
    ok(f"/data of [bold]{escape(space)}[/] is on [bold]{escape(node)}[/] now")


def _availability(name: str, availability: str) -> None:
    with Api() as api:
        api.post(f"/api/v1/nodes/{name}/availability", json={"availability": availability})


@nodes_app.command("drain")
def nodes_drain(name: str = typer.Argument(..., help="The node's name.")) -> None:
    """Move every Space off a node (each starts elsewhere before the old one stops)."""
    _availability(name, "drain")
    ok(f"Draining [bold]{escape(name)}[/]: its Spaces move to other nodes")


@nodes_app.command("activate")
def nodes_activate(name: str = typer.Argument(..., help="The node's name.")) -> None:
    """Take a drained node back: new Spaces may land there again."""
    _availability(name, "active")
    ok(f"[bold]{escape(name)}[/] takes Spaces again")


def _run(action: str, *args: object) -> object:
    from spaceport import devcluster

    try:
        return getattr(devcluster, action)(*args)
    except devcluster.DevClusterError as exc:
        raise CliError(str(exc), Exit.USAGE) from exc


@cluster_app.command("up")
def cluster_up(
    nodes: int = typer.Option(3, "--nodes", "-n", envvar="NODES", help="How many nodes."),
    fake_gpus: int = typer.Option(
        1, "--fake-gpus", help="Fake GPUs the last node advertises (generic resource GPU)."
    ),
) -> None:
    """Start n Docker engines as one Swarm, with a registry; prints the nodes."""
    _run("up", nodes, fake_gpus)
    cluster_status(as_json=False)


@cluster_app.command("down")
def cluster_down() -> None:
    """Remove everything `cluster up` made (engines, network, registry), nothing else."""
    _run("down")
    ok("The dev cluster is gone")


@cluster_app.command("stop-node")
def cluster_stop_node(name: str = typer.Argument(..., help="node1, node2, ...")) -> None:
    """Kill a node's engine and cut it off the network: a machine failing, on demand."""
    _run("stop_node", name)
    ok(f"[bold]{escape(name)}[/] is down (its engine killed, its link cut)")


@cluster_app.command("start-node")
def cluster_start_node(name: str = typer.Argument(..., help="node1, node2, ...")) -> None:
    """Bring a stopped node back; it rejoins the Swarm by itself."""
    _run("start_node", name)
    ok(f"[bold]{escape(name)}[/] is back")


@cluster_app.command("status")
def cluster_status(as_json: bool = JSON) -> None:
    """The dev nodes, their engines and state."""
    states = _run("node_states")
    assert isinstance(states, list)
    if as_json:
        print_json(states)
        return
    if not states:
        console.print("[dim]No dev cluster: `make cluster` starts one.[/]")
        return
    table = Table(box=None, header_style="bold dim")
    for col in ("NODE", "STATE", "ROLE", "ADDRESS", "ENGINE", "GPUS"):
        table.add_column(col)
    for s in states:
        color = "green" if s["state"] == "up" else "red"
        table.add_row(
            s["name"], f"[{color}]{s['state']}[/]", s["role"], s["ip"], s["engine"], s["gpus"]
        )
    console.print(table)


@cluster_app.command("env")
def cluster_env() -> None:
    """The settings that run Spaceport on the dev cluster (`eval $(spaceport cluster env)`)."""
    from spaceport import devcluster

    managers = devcluster.managers()
    if not managers:
        raise CliError("no dev cluster: run `make cluster` first", Exit.USAGE)
    print("export SPACEPORT_RUNTIME=swarm")
    print(f"export SPACEPORT_SWARM_MANAGERS='{json.dumps(managers)}'")
    print(f"export SPACEPORT_REGISTRY={devcluster.REGISTRY}")
    print(f"export SPACEPORT_REGISTRY_PUSH={devcluster.REGISTRY_PUSH}")


def register(app: typer.Typer) -> None:
    app.add_typer(nodes_app, name="nodes")
    app.add_typer(cluster_app, name="cluster")
    app.add_typer(storage_app, name="storage")
