"""How apps find this node from inside their containers (lifecycle/env.py): HF_ENDPOINT and the
names mapped to the entry point, in subdomain and path mode, on `localhost` and on a real
domain; and the firewall rules that open the entry point only (engine/network_policy.py).
The end-to-end calls between real apps are in tests/safety/test_space_calls.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from spaceport.db.models import Base, Space
from spaceport.engine import network_policy
from spaceport.lifecycle.env import app_endpoint, node_hosts
from spaceport.settings import Settings


@pytest.fixture(autouse=True)
def no_node_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """These check Settings' own defaults: drop SPACEPORT_* left by a running test node."""
    import os

    for key in list(os.environ):
        if key.startswith("SPACEPORT_"):
            monkeypatch.delenv(key)


@pytest.fixture()
def session(tmp_path: Path) -> Iterator[Session]:
    """A real database with alice's public and private Spaces and bob's private one."""
    engine = create_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    Base.metadata.create_all(engine)
    with Session(engine) as s:
        s.add_all(
            [
                Space(owner="alice", name="demo", private=False),
                Space(owner="alice", name="secret", private=True),
                Space(owner="bob", name="hidden", private=True),
            ]
        )
        s.commit()
        yield s


def seen_by(session: Session, settings: Settings, space_id: str) -> tuple[str, list[str]]:
    owner, name = space_id.split("/")
    space = session.query(Space).filter_by(owner=owner, name=name).one()
    return app_endpoint(settings), node_hosts(session, settings, space)


def settings(tmp_path: Path, **kw: Any) -> Settings:
    return Settings(data=tmp_path, **kw)


def test_subdomain_mode_on_localhost(session: Session, tmp_path: Path) -> None:
    """`localhost` stays the container's own; the console is host.docker.internal, and the
    Spaces an app may find (public ones, its owner's) resolve, others' private ones do not."""
    s = settings(tmp_path)
    endpoint, hosts = seen_by(session, s, "alice/demo")
    assert endpoint == "http://host.docker.internal:8080"
    assert hosts == ["alice-demo.localhost", "alice-secret.localhost", "host.docker.internal"]
    assert seen_by(session, s, "bob/hidden")[1] == [
        "alice-demo.localhost",
        "bob-hidden.localhost",
        "host.docker.internal",
    ]
    assert s.entry_ports == [8080]


def test_path_mode_on_localhost(session: Session, tmp_path: Path) -> None:
    s = settings(tmp_path, routing="path", url="http://127.0.0.1:9000", listen=":9000")
    endpoint, hosts = seen_by(session, s, "bob/hidden")
    assert endpoint == "http://host.docker.internal:9000"
    assert hosts == ["apps.localhost", "host.docker.internal"]
    assert s.entry_ports == [9000]


def test_a_named_console_under_localhost_keeps_its_name(session: Session, tmp_path: Path) -> None:
    s = settings(tmp_path, url="http://spaces.localhost:8080", apps_domain="spaces.localhost")
    endpoint, hosts = seen_by(session, s, "alice/demo")
    assert endpoint == "http://spaces.localhost:8080"
    assert hosts == [
        "alice-demo.spaces.localhost",
        "alice-secret.spaces.localhost",
        "spaces.localhost",
    ]


def test_a_real_domain_is_left_to_dns_unless_asked(session: Session, tmp_path: Path) -> None:
    """Real names resolve through DNS (to this host: its entry ports, the TLS terminator's
    443 included, are open to apps; or to a load balancer, through egress); `on` maps them
    to the node itself."""
    real = {"url": "https://spaces.example.org", "apps_domain": "spaces.example.org"}
    s = settings(tmp_path, **real)
    assert seen_by(session, s, "alice/demo") == ("https://spaces.example.org", [])
    assert s.entry_ports == [443, 8080]
    on = settings(tmp_path, app_node_hosts="on", **real)
    endpoint, hosts = seen_by(session, on, "bob/hidden")
    assert endpoint == "https://spaces.example.org"
    assert hosts == [
        "alice-demo.spaces.example.org",
        "bob-hidden.spaces.example.org",
        "spaces.example.org",
    ]


def test_off_leaves_every_name_to_dns(session: Session, tmp_path: Path) -> None:
    s = settings(tmp_path, app_node_hosts="off")
    assert seen_by(session, s, "alice/demo") == ("http://localhost:8080", [])


def test_only_the_entry_ports_are_opened_before_the_drop() -> None:
    rules = network_policy.rules_for("br-x", egress=True, entry_ports=(8080, 443))
    inputs = [rule for chain, rule in rules if chain == "INPUT"]
    assert inputs == [
        ["-i", "br-x", "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT"],
        ["-i", "br-x", "-p", "tcp", "--dport", "8080", "-j", "ACCEPT"],
        ["-i", "br-x", "-p", "tcp", "--dport", "443", "-j", "ACCEPT"],
        ["-i", "br-x", "-j", "DROP"],
    ]
