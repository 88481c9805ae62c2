"""Run one image build with BuildKit and stream its output, line by line, as it happens.

The docker SDK only drives the legacy builder, which has no cache mounts; Debian's docker CLI
(20.10) has BuildKit built in, so builds go through it (`settings.docker_cli`).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from spaceport.settings import Settings

STEP_RE = re.compile(r"^#(\d+) \[(?:[^\]]*)\] (.*)$")
CACHED_RE = re.compile(r"^#(\d+) CACHED$")
STEP_ERROR_RE = re.compile(r"^#(\d+) ERROR: (.*)$")


class BuildFailed(RuntimeError):
    def __init__(self, message: str, step: str | None = None) -> None:
        super().__init__(message)
        self.step = step


class BuildCancelled(RuntimeError):
    pass


@dataclass
class CacheReport:
    """Which Dockerfile steps BuildKit reused: the proof that dependency layers were cached."""

    steps: dict[str, str] = field(default_factory=dict)  # step text -> "cached" | "built"

    def as_dict(self) -> dict[str, object]:
        cached = [s for s, v in self.steps.items() if v == "cached"]
        built = [s for s, v in self.steps.items() if v == "built"]
        return {"cached": cached, "built": built, "cached_count": len(cached)}


def docker_cli(settings: Settings) -> str:
    if settings.docker_cli:
        return settings.docker_cli
    for candidate in ("/usr/bin/docker", shutil.which("docker")):
        if candidate and Path(candidate).exists():
            return candidate
    raise BuildFailed("no docker CLI found: install docker.io or set SPACEPORT_DOCKER_CLI")


def build_args(settings: Settings) -> list[str]:
    args: list[str] = []
    if settings.build_index_url:
        args += ["--build-arg", f"UV_INDEX_URL={settings.build_index_url}"]
        args += ["--build-arg", f"PIP_INDEX_URL={settings.build_index_url}"]
    if settings.build_extra_index_urls:
        extra = " ".join(settings.build_extra_index_urls)
        args += ["--build-arg", f"UV_EXTRA_INDEX_URL={extra}"]
        args += ["--build-arg", f"PIP_EXTRA_INDEX_URL={extra}"]
    return args


def run_build(
    settings: Settings,
    context: Path,
    dockerfile: Path,
    tag: str,
    log: Callable[[str], None],
    *,
    no_cache: bool = False,
    cancelled: Callable[[], bool] = lambda: False,
    extra_args: list[str] | None = None,
) -> CacheReport:
    cmd = [
        docker_cli(settings),
        "build",
        "--progress=plain",
        "-t",
        tag,
        "-f",
        str(dockerfile),
        "--label",
        "org.spaceport.managed=true",
        *build_args(settings),
        *(extra_args or []),
    ]
    if no_cache:
        cmd.append("--no-cache")
    cmd.append(str(context))
    env = {**os.environ, "DOCKER_BUILDKIT": "1"}
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, start_new_session=True
    )
    assert proc.stdout is not None
    report = CacheReport()
    step_names: dict[str, str] = {}
    last_error: str | None = None
    deadline = time.monotonic() + settings.build_timeout_s
    last_check = 0.0
    for raw in iter(proc.stdout.readline, b""):
        line = raw.decode(errors="replace").rstrip("\n")
        log(line)
        if m := STEP_RE.match(line):
            step_names[m.group(1)] = m.group(2)
            report.steps.setdefault(m.group(2), "built")
        elif m := CACHED_RE.match(line):
            name = step_names.get(m.group(1))
            if name:
                report.steps[name] = "cached"
        if m := STEP_ERROR_RE.match(line):
            last_error = f"{step_names.get(m.group(1), 'build step')}: {m.group(2)}"
        elif line.lower().startswith("error:") and last_error is None:
            last_error = line
        now = time.monotonic()
        if now - last_check > 0.5:
            last_check = now
            if cancelled():
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait()
                raise BuildCancelled("build cancelled: a newer commit was pushed")
            if now > deadline:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait()
                raise BuildFailed(f"build timed out after {settings.build_timeout_s} s")
    if proc.wait() != 0:
        raise BuildFailed(last_error or f"docker build exited with {proc.returncode}")
    return report
