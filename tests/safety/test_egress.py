"""Apps' outbound traffic follows the operator's policy (engine/network_policy.py): all of
it, only the allowed ports (mining pools listen elsewhere), or none.

The "internet" is a network namespace of the test's own behind a veth pair, at a public
documentation address (203.0.113.2, not a private range the policy drops anyway), listening
on 443 and on 3333 (a classic mining-pool port). A container on a bridge firewalled with each
policy tries both; the open policy reaching both proves the simulated internet is reachable.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from spaceport.engine import network_policy
from tests.conftest import Node, need, unique
from tests.runtime.helpers import the_container
from tests.safety.test_isolation import PROBE, probe

pytestmark = pytest.mark.slow
INTERNET = "203.0.113.2"
LISTENER = """
import socket, threading
def serve(port):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port)); s.listen(16)
    while True:
        c, _ = s.accept(); c.close()
for port in (443, 3333):
    threading.Thread(target=serve, args=(port,), daemon=True).start()
threading.Event().wait()
"""
DIAL = f"""
import json, socket
out = {{}}
for port in (443, 3333):
    try:
        socket.create_connection(("{INTERNET}", port), timeout=2).close(); out[port] = True
    except OSError:
        out[port] = False
print(json.dumps(out))
"""


def sh(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True, text=True)


@pytest.fixture(scope="module")
def internet() -> Iterator[str]:
    """A listener at 203.0.113.2 in a namespace of its own, routed through the host."""
    need(os.geteuid() == 0, "root (network namespaces and iptables)")
    tag = uuid.uuid4().hex[:6]
    ns, host_if, ns_if = f"sp-inet-{tag}", f"spi{tag}", f"spn{tag}"
    sh("ip", "netns", "add", ns)
    listener = None
    try:
        sh("ip", "link", "add", host_if, "type", "veth", "peer", "name", ns_if)
        sh("ip", "link", "set", ns_if, "netns", ns)
        sh("ip", "addr", "add", "203.0.113.1/24", "dev", host_if)
        sh("ip", "link", "set", host_if, "up")
        for cmd in (
            ["ip", "addr", "add", f"{INTERNET}/24", "dev", ns_if],
            ["ip", "link", "set", ns_if, "up"],
            ["ip", "link", "set", "lo", "up"],
            ["ip", "route", "add", "default", "via", "203.0.113.1"],
        ):
            sh("ip", "netns", "exec", ns, *cmd)
        listener = subprocess.Popen(["ip", "netns", "exec", ns, "python3", "-c", LISTENER])
        yield ns
    finally:
        if listener is not None:
            listener.kill()
            listener.wait()
        subprocess.run(["ip", "link", "del", host_if], capture_output=True)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


@contextlib.contextmanager
def firewalled_bridge(egress: bool, ports: tuple[int, ...]) -> Iterator[str]:
    """A bridge network like the apps' one, with the platform's rules for this policy."""
    client = docker.from_env()
    bridge = f"spe{uuid.uuid4().hex[:8]}"
    network = client.networks.create(
        f"spaceport-egress-test-{bridge}",
        driver="bridge",
        options={
            "com.docker.network.bridge.name": bridge,
            "com.docker.network.bridge.enable_icc": "false",
        },
    )
    try:
        assert network_policy.apply(bridge, egress=egress, egress_ports=ports)
        yield network.name or ""
    finally:
        network_policy.remove(bridge)
        network.remove()


def dial_from_app(node: Node, network: str) -> dict[str, bool]:
    image = f"{node.settings.base_image_repo}:{node.settings.default_python}"
    out = docker.from_env().containers.run(
        image,
        ["python", "-c", DIAL],
        network=network,
        user="1000:1000",
        cap_drop=["ALL"],
        remove=True,
    )
    return dict(json.loads(out))


@pytest.mark.parametrize(
    ("egress", "ports", "reached"),
    [
        (True, (), {"443": True, "3333": True}),  # open: the "internet" is reachable
        (True, (443,), {"443": True, "3333": False}),  # only the operator's ports
        (False, (), {"443": False, "3333": False}),  # no outbound access
    ],
    ids=["open", "port-443-only", "off"],
)
def test_egress_follows_the_operators_policy(
    node: Node, internet: str, egress: bool, ports: tuple[int, ...], reached: dict[str, bool]
) -> None:
    with firewalled_bridge(egress, ports) as network:
        assert dial_from_app(node, network) == reached


def test_rules_of_a_removed_bridge_are_gone() -> None:
    need(os.geteuid() == 0, "root (iptables)")
    bridge = f"spe{uuid.uuid4().hex[:8]}"
    assert network_policy.apply(bridge, egress=True, egress_ports=(443,))
    listed = subprocess.run(["iptables", "-S"], capture_output=True, text=True).stdout
    assert listed.count(f"-i {bridge} ") >= 5
    assert network_policy.remove(bridge) >= 5
    listed = subprocess.run(["iptables", "-S"], capture_output=True, text=True).stdout
    assert f"-i {bridge} " not in listed


def test_a_deployment_without_egress_reaches_nothing_outside(
    node: Node, internet: str, tmp_path: Path
) -> None:
    """`egress: false` in a Space's README puts its app on the offline twin of the apps'
    network: it still answers visitors, but opens no connection outward; its neighbour on the
    node's policy (open here) reaches the same "internet"."""
    offline_src = tmp_path / "offline"
    shutil.copytree(PROBE, offline_src)
    readme = offline_src / "README.md"
    readme.write_text(readme.read_text().replace("sdk: docker\n", "sdk: docker\negress: false\n"))
    offline = node.create_space(unique("offline"), sdk="docker")
    online = node.create_space(unique("online"), sdk="docker")
    assert node.push(offline_src, offline).returncode == 0
    assert node.push(PROBE, online).returncode == 0
    for space in (offline, online):
        node.wait_stage(space, {"RUNNING"})

    target = f"{INTERNET}:443"
    assert probe(node, online, f"/probe?targets={target}")["reach"] == {target: True}
    assert probe(node, offline, f"/probe?targets={target}")["reach"] == {target: False}
    networks = the_container(offline).attrs["NetworkSettings"]["Networks"]
    assert list(networks) == [f"{node.settings.app_network}-offline"], networks
