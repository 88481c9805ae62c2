"""spaceport-init (engine/app_init.py), the first process of every app container: the binary
this node compiles, run here as an app would run under it, then in a real container."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest

from spaceport.engine import app_init
from spaceport.settings import Settings
from tests.conftest import Node
from tests.runtime.helpers import echo_space, hf, the_container


@pytest.fixture(scope="module")
def init(tmp_path_factory: pytest.TempPathFactory) -> Path:
    settings = Settings(data=tmp_path_factory.mktemp("data"))
    path = app_init.binary(settings)
    assert app_init.binary(settings) == path  # built once, then kept
    return path


def run(
    init: Path, *program: str, rate: int = 1000, burst: int = 1000
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [str(init), str(rate), str(burst), "--", *program], capture_output=True, timeout=60
    )


def test_the_app_s_status_output_and_errors_come_through(init: Path) -> None:
    done = run(init, "sh", "-c", "echo out; echo err >&2; exit 3")
    assert (done.returncode, done.stdout, done.stderr) == (3, b"out\n", b"err\n")
    assert run(init, "sh", "-c", "kill -TERM $$").returncode == 128 + signal.SIGTERM
    missing = run(init, "no-such-program")
    assert missing.returncode == 127
    assert b"spaceport-init: cannot run no-such-program: No such file" in missing.stderr


def test_signals_reach_the_app(init: Path) -> None:
    app = "trap 'echo stopping; exit 7' TERM; echo ready; while :; do sleep 0.05; done"
    proc = subprocess.Popen(
        [str(init), "1000", "1000", "--", "sh", "-c", app], stdout=subprocess.PIPE
    )
    assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 7
    assert proc.stdout.read() == b"stopping\n"


def test_a_flood_passes_at_the_rate_and_says_what_it_dropped(init: Path, tmp_path: Path) -> None:
    rate, burst = 200_000, 400_000
    log = tmp_path / "log"  # a file, which always takes what is written (as the engine does)
    t0 = time.monotonic()
    with log.open("wb") as out:
        done = subprocess.run(
            [str(init), str(rate), str(burst), "--", "sh", "-c", "timeout 3 yes flood"],
            stdout=out,
            stderr=subprocess.PIPE,
            timeout=60,
        )
    elapsed = time.monotonic() - t0
    lines = log.read_bytes().splitlines()
    notes = [line for line in lines if line.startswith(b"[spaceport] ")]
    passed = sum(len(line) + 1 for line in lines if line == b"flood")
    assert passed <= burst + rate * elapsed, (passed, elapsed)
    assert passed >= burst + rate * 2, (passed, elapsed)  # the cap, not a stall
    assert len(notes) >= 2 and all(b"bytes of stdout dropped" in n for n in notes), notes
    assert b"faster than 200000 bytes/s" in notes[0]
    dropped = sum(int(n.split()[1]) for n in notes)
    assert dropped > 10 * passed  # `yes` writes far faster than the cap
    assert not done.stderr


def test_without_a_compiler_the_error_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(app_init.AppInitError, match="install gcc and libc6-dev"):
        app_init.binary(Settings(data=tmp_path / "data"))


def test_apps_run_under_it_with_their_image_s_entrypoint(node: Node) -> None:
    """A Space's PID 1 is the init, read-only to the app; the image's own entrypoint (tini in
    the base image) and command follow it, and a stop's SIGTERM reaches the app."""
    space_id = echo_space(node, "init")
    try:
        container = the_container(space_id)
        config = container.attrs["Config"]
        rate, burst = str(1024**2), str(4 * 1024**2)  # the node's defaults
        assert config["Entrypoint"] == [app_init.PATH, rate, burst, "--", "/usr/bin/tini", "--"]
        assert config["Cmd"] == ["python", "-u", "app.py"]
        pid1 = container.exec_run(["cat", "/proc/1/cmdline"]).output.split(b"\0")
        assert pid1[0] == app_init.PATH.encode(), pid1
        overwrite = container.exec_run(["sh", "-c", f"echo x > {app_init.PATH}"])
        assert overwrite.exit_code != 0 and b"Permission denied" in overwrite.output
        assert node.app_get(space_id, "/").status_code == 200
        assert b"Tini is not running as PID 1" not in container.logs()
        container.stop(timeout=30)  # SIGTERM: Python's default action ends the app
        container.reload()
        assert container.attrs["State"]["ExitCode"] == 128 + signal.SIGTERM  # not 137: SIGKILL
    finally:
        hf(node).delete_repo(space_id, repo_type="space")
