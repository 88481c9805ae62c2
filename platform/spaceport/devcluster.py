"""A real multi-node Docker Swarm on this one machine, for development, tests and CI.

Each node is a Docker engine of its own (dockerd 20.10 with its own containerd) in its own
network namespace and UTS namespace, on a bridge of their own (`spcbr0`, 10.99.0.0/24); the
nodes form one Swarm (the first is its manager and runs no apps, as production clusters keep
their managers: a node failure on demand then never costs the raft its leader), and
a private registry (Debian's `docker-registry`) serves them on the bridge. The machine's own
dockerd, docker0 and firewall stay as they were: one FORWARD rule for the bridge is added and
removed again. The recipe and its gotchas: ../shared/cluster/README.md in the workspace, and
docs/operations.md "Several machines".

Everything here needs root (network namespaces, dockerd). `spaceport cluster up/down` and
`make cluster` / `make cluster-down` drive it; `stop-node` / `start-node` kill and restart one
node's engine, a node failure on demand.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

BRIDGE = "spcbr0"
SUBNET_PREFIX = "10.99.0"
HOST_IP = f"{SUBNET_PREFIX}.1"
REGISTRY_PORT = 5055
REGISTRY = f"{HOST_IP}:{REGISTRY_PORT}"
"""Where the nodes pull from (each engine starts with it as an insecure registry)."""
REGISTRY_PUSH = f"127.0.0.1:{REGISTRY_PORT}"
"""Where this machine's own engine pushes to: the same storage, served on loopback too,
which Docker accepts over plain HTTP without reconfiguring the machine's dockerd."""
STATE = Path("/var/lib/spaceport-cluster")
RUN = Path("/run/spaceport-cluster")
FIREWALL_RULE = [
    "FORWARD", "-i", BRIDGE, "-o", BRIDGE, "-j", "ACCEPT",
    "-m", "comment", "--comment", "spaceport-cluster",
]  # fmt: skip
HEARTBEAT = "1s"
"""Swarm's dispatcher heartbeat: a dead node is noticed in a few seconds (default 5 s)."""


class DevClusterError(RuntimeError):
    pass


@dataclass
class DevNode:
    index: int
    name: str
    ip: str
    engine: str  # the node's engine API (a UNIX socket on this machine)
    gpus: list[str]  # fake GPU ids advertised as the Swarm generic resource `GPU`
    manager: bool

    @property
    def netns(self) -> str:
        return f"spc{self.index}"

    @property
    def data_root(self) -> Path:
        return STATE / self.name

    @property
    def exec_root(self) -> Path:
        return RUN / self.name

    @property
    def pidfile(self) -> Path:
        return RUN / f"{self.name}.pid"

    @property
    def log(self) -> Path:
        return STATE / f"{self.name}.log"


def _run(*args: str, check: bool = True) -> str:
    proc = subprocess.run(args, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise DevClusterError(f"{' '.join(args)}: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc.stdout.strip()


def _docker(node: DevNode, *args: str, check: bool = True) -> str:
    return _run("docker", "-H", node.engine, *args, check=check)


def _need_root() -> None:
    if os.geteuid() != 0:
        raise DevClusterError("the dev cluster needs root (network namespaces, dockerd): sudo")
    for tool in ("dockerd", "docker", "ip", "nsenter", "unshare", "iptables", "docker-registry"):
        if shutil.which(tool) is None:
            package = {"docker-registry": "docker-registry", "dockerd": "docker.io"}.get(tool)
            hint = f" (apt-get install {package})" if package else ""
            raise DevClusterError(f"`{tool}` is missing{hint}")


def nodes() -> list[DevNode]:
    """The nodes of the cluster `up` made ([] when there is none)."""
    path = STATE / "cluster.json"
    if not path.exists():
        return []
    return [DevNode(**n) for n in json.loads(path.read_text())["nodes"]]


def node(name: str) -> DevNode:
    for n in nodes():
        if n.name == name:
            return n
    known = ", ".join(n.name for n in nodes()) or "none: run `make cluster`"
    raise DevClusterError(f"no dev node {name!r} (nodes: {known})")


def _pid(path: Path) -> int | None:
    try:
        pid = int(path.read_text().strip())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def _engine_ready(node: DevNode) -> bool:
    return (
        subprocess.run(["docker", "-H", node.engine, "version"], capture_output=True).returncode
        == 0
    )


def _start_engine(node: DevNode) -> None:
    """dockerd in the node's network namespace (nsenter --net, not `ip netns exec`, which
    remounts /sys and hides the cgroup mounts) and a UTS namespace of its own (its hostname
    is the node's name)."""
    node.data_root.mkdir(parents=True, exist_ok=True)
    node.exec_root.mkdir(parents=True, exist_ok=True)
    args = [
        "nsenter", f"--net=/run/netns/{node.netns}", "unshare", "--uts",
        "sh", "-c", 'hostname "$0"; exec "$@"', node.name,
        "dockerd",
        "--data-root", str(node.data_root / "docker"),
        "--exec-root", str(node.exec_root),
        "-H", node.engine,
        "--pidfile", str(node.pidfile),
        "--bip", f"172.31.{node.index}.1/24",
        "--default-address-pool", f"base=10.20{node.index}.0.0/16,size=24",
        "--storage-driver", "overlay2",
        "--insecure-registry", REGISTRY,
        "--cgroup-parent", f"spaceport-{node.name}",
        "--label", f"org.spaceport.engine={node.engine}",
    ]  # fmt: skip
    for gpu in node.gpus:
        args += ["--node-generic-resource", f"GPU={gpu}"]
    with open(node.log, "ab") as log:
        subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if _engine_ready(node):
            return
        time.sleep(0.2)
    tail = node.log.read_text(errors="replace").splitlines()[-5:]
    raise DevClusterError(f"{node.name}'s dockerd did not start: " + " / ".join(tail))


def _network(count: int) -> None:
    _run("ip", "link", "add", BRIDGE, "type", "bridge")
    _run("ip", "addr", "add", f"{HOST_IP}/24", "dev", BRIDGE)
    _run("ip", "link", "set", BRIDGE, "up")
    for i in range(1, count + 1):
        ns, veth = f"spc{i}", f"spc{i}h"
        _run("ip", "netns", "add", ns)
        _run("ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
        _run("ip", "link", "set", veth, "master", BRIDGE, "up")
        _run("ip", "-n", ns, "addr", "add", f"{SUBNET_PREFIX}.{10 + i}/24", "dev", "eth0")
        _run("ip", "-n", ns, "link", "set", "lo", "up")
        _run("ip", "-n", ns, "link", "set", "eth0", "up")
        _run("ip", "-n", ns, "route", "add", "default", "via", HOST_IP)
        _run("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.ip_forward=1")
    # The host's FORWARD policy may be DROP, and bridged frames pass iptables.
    _run("iptables", "-I", FIREWALL_RULE[0], "1", *FIREWALL_RULE[1:])


def _registry() -> None:
    """Debian's registry (distribution 2.8), plain HTTP, one storage served twice: on the
    bridge for the nodes and on loopback for this machine's engine."""
    root = STATE / "registry"
    (root / "data").mkdir(parents=True, exist_ok=True)
    for name, addr in (("bridge", REGISTRY), ("loopback", REGISTRY_PUSH)):
        config = root / f"{name}.yml"
        config.write_text(
            "version: 0.1\nlog: {level: warn}\n"
            f"storage:\n  filesystem: {{rootdirectory: {root / 'data'}}}\n"
            "  delete: {enabled: true}\n"
            f"http:\n  addr: {addr}\n"
        )
        with open(root / f"{name}.log", "ab") as log:
            proc = subprocess.Popen(
                ["docker-registry", "serve", str(config)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        (RUN / f"registry-{name}.pid").write_text(str(proc.pid))
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if _registry_answers():
            return
        time.sleep(0.1)
    raise DevClusterError(f"the registry did not answer on {REGISTRY} and {REGISTRY_PUSH}")


def up(count: int = 3, fake_gpus: int = 1) -> list[DevNode]:
    """Start `count` nodes as one Swarm and the registry; the last node advertises
    `fake_gpus` fake GPUs. Returns the nodes (the running ones if a cluster is up already,
    its stopped nodes started again)."""
    _need_root()
    if nodes():
        if running():
            _start_stopped()
            return nodes()
        # Recorded, but its processes are gone (the machine restarted, or they were killed):
        # what is left (namespaces, mounts, the bridge, the state) is removed and made again.
        down()
    if count < 1 or count > 9:
        raise DevClusterError("a dev cluster has 1 to 9 nodes")
    RUN.mkdir(parents=True, exist_ok=True)
    STATE.mkdir(parents=True, exist_ok=True)
    made = [
        DevNode(
            index=i,
            name=f"node{i}",
            ip=f"{SUBNET_PREFIX}.{10 + i}",
            engine=f"unix://{RUN}/node{i}.sock",
            gpus=[f"GPU-fake-{i}-{g}" for g in range(fake_gpus)] if i == count else [],
            manager=i == 1,
        )
        for i in range(1, count + 1)
    ]
    (STATE / "cluster.json").write_text(json.dumps({"nodes": [asdict(n) for n in made]}))
    try:
        _network(count)
        _registry()
        for n in made:
            _start_engine(n)
        first = made[0]
        _docker(
            first, "swarm", "init", "--advertise-addr", first.ip,
            "--default-addr-pool", "10.210.0.0/16", "--default-addr-pool-mask-length", "24",
            "--dispatcher-heartbeat", HEARTBEAT,
        )  # fmt: skip
        tokens = {
            role: _docker(first, "swarm", "join-token", "-q", role)
            for role in ("manager", "worker")
        }
        for n in made[1:]:
            role = "manager" if n.manager else "worker"
            _docker(
                n, "swarm", "join", "--advertise-addr", n.ip, "--token", tokens[role],
                f"{first.ip}:2377",
            )  # fmt: skip
        for n in made:  # where the control plane reaches each node's engine
            _docker(first, "node", "update", "--label-add", f"org.spaceport.engine={n.engine}",
                    n.name)  # fmt: skip
        if count > 1:  # a dedicated manager: apps run on the other nodes
            _docker(first, "node", "update", "--availability", "drain", first.name)
        _wait_all_ready(first, count)
    except Exception:
        down()
        raise
    return made


def _registry_answers() -> bool:
    try:
        return all(
            httpx.get(f"http://{a}/v2/", timeout=2).status_code == 200
            for a in (REGISTRY, REGISTRY_PUSH)
        )
    except httpx.HTTPError:
        return False


def running() -> bool:
    """Whether a recorded cluster is alive: its manager's engine and its registry answer (a
    worker node may be stopped on purpose, `stop_node`)."""
    made = nodes()
    return bool(made) and all(_engine_ready(n) for n in made if n.manager) and _registry_answers()


def _start_stopped() -> None:
    """`up` on a running cluster starts the nodes `stop_node` stopped."""
    for n in nodes():
        if not n.manager and not _engine_ready(n):
            start_node(n.name)


def _wait_all_ready(manager: DevNode, count: int, timeout_s: float = 60) -> None:
    """Until Swarm says every node is ready: a node that joined a moment ago gets no task yet,
    and Spaces deployed then all land on the nodes before it."""
    deadline = time.monotonic() + timeout_s
    states: list[str] = []
    while time.monotonic() < deadline:
        states = _docker(manager, "node", "ls", "--format", "{{.Status}}").split()
        if len(states) == count and all(s == "Ready" for s in states):
            return
        time.sleep(0.2)
    raise DevClusterError(f"the nodes are not all ready after {timeout_s:.0f} s: {states}")


def managers() -> list[str]:
    """The engine URLs of the managers, for SPACEPORT_SWARM_MANAGERS."""
    return [n.engine for n in nodes() if n.manager]


def stop_node(name: str) -> None:
    """A machine failing: the node's link goes down (nothing reaches it, its apps included)
    and its dockerd and containerd are killed (SIGKILL: a crash, not a shutdown). Its
    containers stay, cut off, until `start_node`; Swarm shuts them down when it is back."""
    target = node(name)
    _run("ip", "link", "set", f"spc{target.index}h", "down")
    pid = _pid(target.pidfile)
    if pid is None:
        raise DevClusterError(f"{name}'s engine is not running")
    children = _run("pgrep", "-P", str(pid), "-x", "containerd", check=False).split()
    for p in [pid, *map(int, children)]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(p, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while _pid(target.pidfile) is not None and time.monotonic() < deadline:
        time.sleep(0.05)


def start_node(name: str) -> None:
    """Start a stopped node's engine again; it rejoins the Swarm by itself."""
    target = node(name)
    _run("ip", "link", "set", f"spc{target.index}h", "up")
    if _pid(target.pidfile) is not None and _engine_ready(target):
        return
    target.pidfile.unlink(missing_ok=True)
    _start_engine(target)


def node_states() -> list[dict[str, str]]:
    """Each dev node with its engine's state (`up` or `down`) and Swarm role."""
    return [
        {
            "name": n.name,
            "ip": n.ip,
            "engine": n.engine,
            "role": "manager" if n.manager else "worker",
            "state": "up" if _pid(n.pidfile) is not None else "down",
            "gpus": ",".join(n.gpus),
        }
        for n in nodes()
    ]


def _our_links() -> list[str]:
    names = [line.split(":")[1].strip().split("@")[0] for line in
             _run("ip", "-o", "link", "show", check=False).splitlines() if ":" in line]  # fmt: skip
    return [n for n in names if n == BRIDGE or (n.startswith("spc") and n.endswith("h"))]


def down() -> None:
    """Remove everything `up` made, and nothing else."""
    made = nodes()
    for n in made:
        if _pid(n.pidfile) is not None:
            _docker(n, "swarm", "leave", "--force", check=False)
            ids = _docker(n, "ps", "-aq", check=False).split()
            if ids:
                _docker(n, "rm", "-f", *ids, check=False)
    # Every engine at once (each takes seconds to shut down), killed if it takes too long.
    pidfiles = [n.pidfile for n in made] + list(RUN.glob("registry-*.pid"))
    for pidfile in pidfiles:
        if (pid := _pid(pidfile)) is not None:
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 5
    while any(_pid(p) is not None for p in pidfiles) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pidfile in pidfiles:
        if (pid := _pid(pidfile)) is not None:
            os.kill(pid, signal.SIGKILL)
    # containerd and shims of our engines (their arguments name our exec root)
    for line in _run("pgrep", "-af", str(RUN), check=False).splitlines():
        pid_s, _, _ = line.partition(" ")
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid_s), signal.SIGKILL)
    # nsenter --net shares the host's mount namespace: the engines' mounts leak into it.
    mounts = Path("/proc/mounts").read_text().splitlines()
    ours = sorted(
        (m.split()[1] for m in mounts if m.split()[1].startswith((str(STATE), str(RUN)))),
        reverse=True,
    )
    for mount in ours:
        _run("umount", "-l", mount, check=False)
    for i in range(1, 10):
        _run("ip", "link", "del", f"spc{i}h", check=False)  # and its peer in the namespace
        _run("ip", "netns", "del", f"spc{i}", check=False)
    _run("ip", "link", "del", BRIDGE, check=False)
    # The kernel frees a namespace's links a moment later: an `up` right after this (a stale
    # cluster made again) would find its names taken.
    deadline = time.monotonic() + 30
    while _our_links() and time.monotonic() < deadline:
        time.sleep(0.2)
    while subprocess.run(["iptables", "-C", *FIREWALL_RULE], capture_output=True).returncode == 0:
        _run("iptables", "-D", *FIREWALL_RULE)
    shutil.rmtree(STATE, ignore_errors=True)
    shutil.rmtree(RUN, ignore_errors=True)
