"""Run one image build with BuildKit and stream its output, line by line, as it happens.

The docker SDK only drives the legacy builder, which has no cache mounts and no build secrets;
Debian's docker CLI (20.10) has BuildKit built in, so builds go through it
(`settings.docker_cli`). A watchdog thread stops the build when it is cancelled or over its
time limit even while the build prints nothing; the CLI runs in its own process group with a
parent-death signal, so a killed worker never leaves a build running. BuildKit cancels the
build's step containers when its client goes away.
"""

from __future__ import annotations

import collections
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from spaceport.settings import Settings

STEP_RE = re.compile(r"^#(\d+) \[([^\]]*)\] (.*)$")
CACHED_RE = re.compile(r"^#(\d+) CACHED$")
OUTPUT_RE = re.compile(r"^#(\d+) \d+\.\d+ (.*)$")
STEP_ERROR_RE = re.compile(r"^#(\d+) ERROR: (.*)$")
DEPENDENCY_STEP_RE = re.compile(r"\b(uv pip install|pip install|apt-get install)\b")
WATCH_INTERVAL_S = 0.25


class BuildFailed(RuntimeError):
    """`docker build` failed; `step` is the Dockerfile step, `output` its last lines."""

    def __init__(self, message: str, step: str | None = None, output: list[str] | None = None):
        super().__init__(message)
        self.step = step
        self.output = output or []


class BuildCancelled(RuntimeError):
    pass


@dataclass
class CacheReport:
    """Which Dockerfile steps BuildKit reused: the proof that dependency layers were cached."""

    steps: dict[str, str] = field(default_factory=dict)  # step text -> "cached" | "built"

    def as_dict(self) -> dict[str, object]:
        cached = [s for s, v in self.steps.items() if v == "cached"]
        built = [s for s, v in self.steps.items() if v == "built"]
        deps = [s for s in self.steps if DEPENDENCY_STEP_RE.search(s)]
        return {
            "cached": cached,
            "built": built,
            "cached_count": len(cached),
            "dependency_steps": deps,
            "dependencies_cached": bool(deps) and all(self.steps[s] == "cached" for s in deps),
        }


@dataclass
class BuildRequest:
    """One `docker build`: context, Dockerfile, tag, and what to pass in."""

    context: Path
    dockerfile: Path
    tag: str
    no_cache: bool = False
    build_args: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, Path] = field(default_factory=dict)  # BuildKit secret id -> file
    target: str | None = None
    labels: dict[str, str] = field(default_factory=dict)


def docker_cli(settings: Settings) -> str:
    if settings.docker_cli:
        return settings.docker_cli
    for candidate in ("/usr/bin/docker", shutil.which("docker")):
        if candidate and Path(candidate).exists():
            return candidate
    raise BuildFailed("no docker CLI found: install docker.io or set SPACEPORT_DOCKER_CLI")


def index_build_args(settings: Settings, *, replace_extra: bool = False) -> dict[str, str]:
    """The operator's package index settings, as build args.

    `replace_extra` passes the extra index even when none is configured (empty), so that it
    replaces the GPU base image's default: the rendered Dockerfiles add the CUDA PyTorch index
    themselves, and only where a requirement names torch.
    """
    args: dict[str, str] = {}
    if settings.build_index_url:
        args["UV_INDEX_URL"] = args["PIP_INDEX_URL"] = settings.build_index_url
    extra = " ".join(settings.build_extra_index_urls)
    if extra or replace_extra:
        args["UV_EXTRA_INDEX_URL"] = args["PIP_EXTRA_INDEX_URL"] = extra
    return args


def command(settings: Settings, req: BuildRequest) -> list[str]:
    cmd = [docker_cli(settings), "build", "--progress=plain", "-t", req.tag]
    cmd += ["-f", str(req.dockerfile), "--label", "org.spaceport.managed=true"]
    for key, value in req.labels.items():
        cmd += ["--label", f"{key}={value}"]
    for key, value in req.build_args.items():
        cmd += ["--build-arg", f"{key}={value}"]
    for secret_id, path in req.secrets.items():
        cmd += ["--secret", f"id={secret_id},src={path}"]
    if req.target:
        cmd += ["--target", req.target]
    if req.no_cache:
        cmd.append("--no-cache")
    cmd.append(str(req.context))
    setpriv = shutil.which("setpriv")
    # Dies with the worker process that started it (SIGKILL included).
    return [setpriv, "--pdeathsig", "TERM", *cmd] if setpriv else cmd


class _Watchdog(threading.Thread):
    """Kills the build's process group on cancellation or at the deadline."""

    def __init__(
        self, proc: subprocess.Popen[bytes], deadline: float, cancelled: Callable[[], bool]
    ):
        super().__init__(name="build-watchdog", daemon=True)
        self.proc, self.deadline, self.cancelled = proc, deadline, cancelled
        self.reason: str | None = None
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(WATCH_INTERVAL_S):
            try:
                if self.cancelled():
                    self.reason = "cancelled"
                elif time.monotonic() > self.deadline:
                    self.reason = "timeout"
            except Exception:  # a flaky database read must not kill the build
                continue
            if self.reason:
                kill_group(self.proc)
                return


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


class _Progress:
    """Parses BuildKit's plain progress: step names, cache hits, each step's last lines."""

    def __init__(self) -> None:
        self.report = CacheReport()
        self.names: dict[str, str] = {}
        self.output: dict[str, collections.deque[str]] = {}
        self.error: tuple[str, str] | None = None  # (step name, error)
        self.failed_id = ""

    def feed(self, line: str) -> None:
        if m := STEP_RE.match(line):
            sid, where, text = m.groups()
            self.names[sid] = text if where != "internal" else f"[internal] {text}"
            if where != "internal" and not text.startswith("FROM "):
                self.report.steps.setdefault(text, "built")
        elif m := CACHED_RE.match(line):
            name = self.names.get(m.group(1))
            if name in self.report.steps:
                self.report.steps[name] = "cached"
        elif m := OUTPUT_RE.match(line):
            self.output.setdefault(m.group(1), collections.deque(maxlen=25)).append(m.group(2))
        elif (m := STEP_ERROR_RE.match(line)) and self.error is None:
            self.error = (self.names.get(m.group(1), "build step"), m.group(2))
            self.output.setdefault(m.group(1), collections.deque(maxlen=25))
            self.failed_id = m.group(1)

    def failure(self, rc: int) -> BuildFailed:
        if self.error is None:
            return BuildFailed(f"docker build exited with {rc}")
        step, error = self.error
        return BuildFailed(error, step=step, output=list(self.output[self.failed_id]))


def run_build(
    settings: Settings,
    req: BuildRequest,
    log: Callable[[str], None],
    *,
    cancelled: Callable[[], bool] = lambda: False,
    timeout_s: float | None = None,
) -> CacheReport:
    """Build `req`; raises BuildFailed (with the failing step) or BuildCancelled."""
    env = {**os.environ, "DOCKER_BUILDKIT": "1"}
    proc = subprocess.Popen(
        command(settings, req),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=env,
        start_new_session=True,
    )
    assert proc.stdout is not None
    limit = timeout_s if timeout_s is not None else settings.build_timeout_s
    watchdog = _Watchdog(proc, time.monotonic() + limit, cancelled)
    watchdog.start()
    progress = _Progress()
    try:
        for raw in iter(proc.stdout.readline, b""):
            line = raw.decode(errors="replace").rstrip("\n")
            log(line)
            progress.feed(line)
        rc = proc.wait()
    finally:
        watchdog.done.set()
        if proc.poll() is None:
            kill_group(proc)
    if watchdog.reason == "cancelled":
        raise BuildCancelled("build cancelled: a newer commit was pushed")
    if watchdog.reason == "timeout":
        raise BuildFailed(
            f"the build took longer than its time limit ({limit:.0f} s) and was stopped; make "
            "it faster (fewer or prebuilt dependencies) or ask the operator to raise "
            "SPACEPORT_BUILD_TIMEOUT_S"
        )
    if rc != 0:
        raise progress.failure(rc)
    return progress.report
