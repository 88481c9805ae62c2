"""Firewall rules for the apps' network: apps reach the internet (if allowed), never the host.

Docker's bridge lets a container open connections to every service the host listens on at
the bridge's gateway address (a Redis started without `--bind`, the API, PostgreSQL...) and to
link-local addresses such as a cloud's metadata service. The platform must not depend on every
operator binding every service to loopback, so it drops that traffic itself:

- INPUT from the apps' bridge: only replies to connections the host opened (the proxy talking
  to a published port) are accepted, and new connections to the node's public entry point
  (`entry_ports`: the proxy's listen port, the public URL's) on bridges whose apps may open
  connections outward, so that one Space calls another as any visitor would (through the
  proxy, with its access checks); every other new connection from apps to the host is dropped.
- DOCKER-USER (forwarded traffic) from the apps' bridge: metadata and link-local addresses are
  dropped, private ranges too; and when outbound access is off, everything but replies.
  Only the operator's allowed ports leave when `app_egress_ports` is set.

Rules are inserted idempotently (`iptables -C` before `-I`), tagged with a comment.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence

import structlog

log = structlog.get_logger(__name__)

TAG = "spaceport-app-isolation"
BLOCKED_DESTINATIONS = ("169.254.0.0/16", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")


class NetworkPolicyError(RuntimeError):
    pass


def _iptables(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["iptables", "-w", "5", *args], capture_output=True, text=True)


def _ensure(chain: str, rule: Sequence[str], position: int = 1) -> None:
    spec = [*rule, "-m", "comment", "--comment", TAG]
    if _iptables("-C", chain, *spec).returncode == 0:
        return
    done = _iptables("-I", chain, str(position), *spec)
    if done.returncode != 0:
        raise NetworkPolicyError(f"iptables -I {chain} failed: {done.stderr.strip()}")


def dns_servers(resolv_conf: str = "/etc/resolv.conf") -> list[str]:
    """The host's resolvers: Docker's embedded DNS forwards apps' queries to them."""
    try:
        with open(resolv_conf) as fh:
            lines = fh.read().splitlines()
    except OSError:
        return []
    return [ln.split()[1] for ln in lines if ln.startswith("nameserver") and "." in ln]


def rules_for(
    bridge: str,
    *,
    egress: bool,
    egress_ports: Sequence[int] = (),
    dns: Sequence[str] = (),
    entry_ports: Sequence[int] = (),
) -> list[tuple[str, list[str]]]:
    """The (chain, rule) list, in the order they must end up (first = evaluated first)."""
    rules: list[tuple[str, list[str]]] = [
        (
            "INPUT",
            ["-i", bridge, "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT"],
        ),
        # One rule per port: nodes sharing the bridge (one per data dir) each add their own.
        *(
            ("INPUT", ["-i", bridge, "-p", "tcp", "--dport", str(port), "-j", "ACCEPT"])
            for port in entry_ports
        ),
        ("INPUT", ["-i", bridge, "-j", "DROP"]),
        (
            "DOCKER-USER",
            ["-i", bridge, "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "RETURN"],
        ),
    ]
    for server in dns if egress else ():
        for proto in ("udp", "tcp"):
            rules.append(
                (
                    "DOCKER-USER",
                    ["-i", bridge, "-d", server, "-p", proto, "--dport", "53", "-j", "RETURN"],
                )
            )
    rules += [
        ("DOCKER-USER", ["-i", bridge, "-d", net, "-j", "DROP"]) for net in BLOCKED_DESTINATIONS
    ]
    if not egress:
        rules.append(("DOCKER-USER", ["-i", bridge, "-j", "DROP"]))
    elif egress_ports:
        ports = ",".join(str(p) for p in egress_ports)
        for proto in ("tcp", "udp"):
            rules.append(
                (
                    "DOCKER-USER",
                    [
                        "-i",
                        bridge,
                        "-p",
                        proto,
                        "-m",
                        "multiport",
                        "--dports",
                        ports,
                        "-j",
                        "RETURN",
                    ],
                )
            )
        rules.append(("DOCKER-USER", ["-i", bridge, "-j", "DROP"]))
    return rules


def apply(
    bridge: str,
    *,
    egress: bool = True,
    egress_ports: Sequence[int] = (),
    entry_ports: Sequence[int] = (),
) -> bool:
    """Install the rules for `bridge`; False (and a warning) where iptables is unavailable."""
    if shutil.which("iptables") is None:
        log.warning("network_policy.unavailable", reason="iptables not found", bridge=bridge)
        return False
    rules = rules_for(
        bridge,
        egress=egress,
        egress_ports=egress_ports,
        dns=dns_servers(),
        entry_ports=entry_ports,
    )
    # Insert in reverse at position 1 of each chain so the final order matches `rules`.
    for chain, rule in reversed(rules):
        _ensure(chain, rule)
    return True


def remove(bridge: str) -> int:
    """Delete this platform's rules for `bridge` (its network is gone); returns how many."""
    if shutil.which("iptables") is None:
        return 0
    removed = 0
    for chain in ("INPUT", "DOCKER-USER"):
        listed = _iptables("-S", chain)
        for line in listed.stdout.splitlines():
            parts = line.split()
            ours = parts[:2] == ["-A", chain] and TAG in parts and "-i" in parts
            if not ours or parts[parts.index("-i") + 1] != bridge:
                continue
            spec = [p.strip('"') for p in parts[2:]]
            if _iptables("-D", chain, *spec).returncode == 0:
                removed += 1
    return removed
