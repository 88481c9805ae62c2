"""Shared steps of the runtime tests: an echo-app Space, the HF client, containers, waiting."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import docker
import httpx
from docker.models.containers import Container
from huggingface_hub import HfApi

from tests.conftest import Node, unique

ECHO = Path(__file__).parent / "apps" / "echo"
T = TypeVar("T")


def hf(node: Node) -> HfApi:
    return HfApi(endpoint=node.url, token=node.token)


def echo_space(node: Node, prefix: str, **create: Any) -> str:
    """A new Space running the echo app (its image builds from cache after the first)."""
    space_id = node.create_space(unique(prefix), sdk="docker", **create)
    push = node.push(ECHO, space_id)
    assert push.returncode == 0, push.stderr
    node.wait_stage(space_id, {"RUNNING"}, timeout=180)
    return space_id


def containers(space_id: str, *, all: bool = False) -> list[Container]:
    return list(
        docker.from_env().containers.list(
            all=all,
            filters={"label": f"org.spaceport.space={space_id}"},
            ignore_removed=True,  # one removed between the listing and its inspection
        )
    )


def the_container(space_id: str) -> Container:
    """The Space's one running container (once any swap has finished)."""
    found = wait_for(lambda: (c := containers(space_id)) and len(c) == 1 and c[0], 30)
    return found


def settled(node: Node, space_id: str) -> Container:
    """Wait until every requested restart is done: RUNNING, one container."""
    node.wait_stage(space_id, {"RUNNING"}, timeout=90)
    return the_container(space_id)


def wait_for(check: Callable[[], T | bool | None], timeout: float, every: float = 0.1) -> T:
    """Poll `check` until it returns something truthy; fail with the last value seen."""
    deadline = time.monotonic() + timeout
    value: Any = None
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"condition not met within {timeout} s (last: {value!r})")


def error_message(node: Node, space_id: str, containing: str, timeout: float) -> str:
    """The Space's errorMessage once it contains `containing` (the platform's reason)."""
    seen: list[str] = []

    def check() -> str | None:
        seen.append(node.runtime(space_id).get("errorMessage") or "")
        return seen[-1] if containing in seen[-1] else None

    try:
        return wait_for(check, timeout, every=0.3)
    except AssertionError:
        raise AssertionError(f"no {containing!r} in errorMessage: {seen[-1:]}") from None


def app_text(node: Node, space_id: str, path: str = "/") -> tuple[int, str]:
    """(status, body) through the proxy; (0, error) when the connection failed."""
    try:
        r = node.app_get(space_id, path)
    except httpx.HTTPError as exc:
        return 0, repr(exc)
    return r.status_code, r.text


def pid_of(node: Node, name: str) -> int:
    return int((node.settings.run_dir / f"{name}.pid").read_text())


def restart_processes(node: Node, *, worker: bool = True) -> None:
    """Start the node's API (and its worker, killed first) again: they read the environment
    when they start."""
    from spaceport.node import ensure_api, ensure_worker
    from spaceport.supervisor import stop_process

    if worker:
        kill_process(node, "worker")
        ensure_worker(node.settings, print)
    stop_process(node.settings, "api")
    ensure_api(node.settings, print)


@contextlib.contextmanager
def node_env(node: Node, env: dict[str, str], *, worker: bool = True) -> Iterator[None]:
    """The node's API (and worker) running with `env` set, then as before."""
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    restart_processes(node, worker=worker)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        restart_processes(node, worker=worker)


def kill_process(node: Node, name: str) -> None:
    """SIGKILL a node process (its whole group), as a crash would."""
    pid = pid_of(node, name)
    os.killpg(pid, signal.SIGKILL)
    wait_for(lambda: not alive(pid), 10)
    with contextlib.suppress(ChildProcessError):  # the node fixture started it: reap it
        os.waitpid(pid, 0)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as fh:  # a zombie has exited
        return fh.read().split()[2] != "Z"


def proxy_reloads(node: Node) -> Any:
    """What changes when the proxy reloads (which closes visitors' idle connections): Caddy's
    config, read over its admin socket; nginx's worker processes, which a reload replaces
    (its route table changes without one)."""
    if node.settings.proxy == "nginx":
        master = pid_of(node, "nginx")
        return Path(f"/proc/{master}/task/{master}/children").read_text().split()
    transport = httpx.HTTPTransport(uds=str(node.settings.caddy_admin_socket))
    with httpx.Client(transport=transport, base_url="http://caddy") as client:
        return client.get("/config/").json()


def serves_at_normal_weight(container_id: str) -> bool:
    """The container's CPU weight is a serving app's (1024): a taken standby or pool container
    starts ahead of the others (4096) and is set back once it serves, a moment after RUNNING."""
    import docker

    shares = docker.from_env().api.inspect_container(container_id)["HostConfig"]["CpuShares"]
    return bool(shares == 1024)
