"""Base images: mirror parsing, version checks, locks (fast) and the real CPU image (slow)."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

from spaceport.settings import Settings
from spaceport_builder.base_images import (
    OFFLINE_PYTHONS,
    BaseImageError,
    _file_lock,
    base_image_tag,
    build_base_images,
    check_python_version,
    debian_mirror_lines,
    ensure_base_image,
    host_apt_sources,
    parse_deb822_sources,
    parse_one_line_sources,
)

DEB822 = """\
Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb deb-src
# a comment between fields
URIs: http://mirror.example/debian-security/
Suites: bookworm-security
Components: main contrib

Enabled: no
Types: deb
URIs: http://disabled.example/debian
Suites: bookworm
Components: main

Types: deb
URIs: https://deb.nodesource.com/node_20.x
Suites: nodistro
Components: main
"""

ONE_LINE = """\
# Debian
deb http://ftp.example.org/debian trixie main contrib
deb [arch=amd64 signed-by=/k.gpg] http://ftp.example.org/debian-security trixie-security main
deb-src http://ftp.example.org/debian trixie main
deb https://packages.cloud.google.com/apt cloud-sdk-bookworm main  # not Debian
"""


def _settings(tmp_path: Path) -> Settings:
    return Settings(data=tmp_path / "data")


# ------------------------------------------------------------------------------------------
# Fast: apt sources -> mirror lines


def test_parse_deb822() -> None:
    sources = parse_deb822_sources(DEB822)
    assert [s.uris for s in sources] == [
        ("http://mirror.example/debian",),
        ("http://mirror.example/debian-security/",),
        ("https://deb.nodesource.com/node_20.x",),
    ]
    assert sources[0].suites == ("bookworm", "bookworm-updates")
    assert sources[1].types == ("deb", "deb-src")
    assert sources[1].components == ("main", "contrib")
    assert sources[0].options["signed-by"] == "/usr/share/keyrings/debian-archive-keyring.gpg"
    assert debian_mirror_lines(sources) == [
        "deb http://mirror.example/debian bookworm main",
        "deb http://mirror.example/debian bookworm-updates main",
        "deb http://mirror.example/debian-security bookworm-security main",
    ]


def test_parse_one_line_other_release_reuses_mirror() -> None:
    sources = parse_one_line_sources(ONE_LINE)
    assert len(sources) == 4
    assert sources[1].options == {"arch": "amd64", "signed-by": "/k.gpg"}
    assert sources[1].uris == ("http://ftp.example.org/debian-security",)
    assert sources[2].types == ("deb-src",)
    # The host runs trixie: its mirror still serves bookworm.
    assert debian_mirror_lines(sources) == [
        "deb http://ftp.example.org/debian bookworm main",
        "deb http://ftp.example.org/debian bookworm-updates main",
        "deb http://ftp.example.org/debian-security bookworm-security main",
    ]


def test_host_apt_sources_reads_both_formats(tmp_path: Path) -> None:
    etc = tmp_path / "apt"
    (etc / "sources.list.d").mkdir(parents=True)
    (etc / "sources.list").write_text("deb http://a.example/debian bookworm main\n")
    (etc / "sources.list.d" / "debian.sources").write_text(DEB822)
    (etc / "sources.list.d" / "x.sources.disabled").write_text(DEB822.replace("mirror", "no"))
    uris = [u for s in host_apt_sources(etc) for u in s.uris]
    assert uris[0] == "http://a.example/debian"
    assert "http://mirror.example/debian" in uris
    assert not any("no.example" in u for u in uris)


def test_no_debian_mirror_is_actionable() -> None:
    sources = parse_one_line_sources("deb http://archive.ubuntu.com/ubuntu noble main\n")
    with pytest.raises(BaseImageError, match="SPACEPORT_DEBIAN_MIRROR"):
        debian_mirror_lines(sources)


# ------------------------------------------------------------------------------------------
# Fast: versions, tags, locks


def test_unsupported_version_offline_lists_supported(tmp_path: Path) -> None:
    with pytest.raises(BaseImageError) as exc:
        check_python_version("3.12", offline=True)
    assert "3.12" in exc.value.message
    assert all(v in exc.value.message for v in OFFLINE_PYTHONS)
    # The public entry points refuse before touching Docker or mmdebstrap.
    with pytest.raises(BaseImageError, match=r"supported versions are 3\.11"):
        ensure_base_image(_settings(tmp_path), "3.12", offline=True, log=lambda _: None)
    with pytest.raises(BaseImageError, match=r"3\.11"):
        build_base_images(_settings(tmp_path), ["3.9"], False, True, False, lambda _: None)
    with pytest.raises(BaseImageError, match="not supported"):
        check_python_version("2.7", offline=None)
    assert check_python_version("3.11", offline=True) == "3.11"


def test_base_image_tag(tmp_path: Path) -> None:
    s = _settings(tmp_path)
    assert base_image_tag(s, "3.11", gpu=False) == "spaceport/python:3.11"
    assert base_image_tag(s, "3.11", gpu=True) == "spaceport/python-cuda:3.11"
    s2 = Settings(data=tmp_path, base_image_repo="registry.local:5000/sp/python")
    assert base_image_tag(s2, "3.12", True) == "registry.local:5000/sp/python-cuda:3.12"


def test_file_lock_serialises(tmp_path: Path) -> None:
    s = _settings(tmp_path)
    events: list[str] = []
    held = threading.Event()

    def first() -> None:
        with _file_lock(s, "spaceport/python:3.11", lambda _: None):
            held.set()
            time.sleep(0.3)
            events.append("first-done")

    t = threading.Thread(target=first)
    t.start()
    held.wait(5)
    with _file_lock(s, "spaceport/python:3.11", events.append):
        events.append("second-in")
    t.join()
    assert events[0].startswith("waiting for another process")
    assert events[1:] == ["first-done", "second-in"]
    assert (s.run_dir / "locks").is_dir()


# ------------------------------------------------------------------------------------------
# Slow: the real CPU base image


def _docker() -> str:
    """The docker CLI, or skip (fail under CI=true) when Docker is not usable."""
    docker = shutil.which("/usr/bin/docker") or shutil.which("docker")
    problem = None
    if docker is None:
        problem = "docker CLI not installed"
    else:
        res = subprocess.run([docker, "info"], capture_output=True, text=True, timeout=60)
        if res.returncode != 0:
            problem = f"docker engine not reachable: {res.stderr.strip()[:200]}"
    if problem:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{problem} (CI=true: Docker is required)")
        pytest.skip(problem)
    assert docker is not None
    return docker


@pytest.mark.slow
def test_cpu_base_image_contract(tmp_path: Path) -> None:
    docker = _docker()
    settings = Settings(data=tmp_path / "data")
    lines: list[str] = []
    started = time.monotonic()
    tag = ensure_base_image(settings, "3.11", offline=None, log=lines.append)
    print(f"ensure_base_image: {time.monotonic() - started:.1f}s, {len(lines)} log lines")
    assert tag == "spaceport/python:3.11"
    # Idempotent: a second call builds nothing.
    again: list[str] = []
    assert ensure_base_image(settings, "3.11", log=again.append) == tag
    assert again == []

    script = (
        "set -e; id -u; id -g; echo $HOME; pwd; "
        'python -c "import sys; print(sys.prefix)"; '
        "uv --version; "
        "uv pip install six; "
        'python -c "import six; print(six.__file__)"; '
        "grep -c 'BEGIN CERTIFICATE' /etc/ssl/certs/ca-certificates.crt"
    )
    res = subprocess.run(
        [docker, "run", "--rm", tag, "sh", "-c", script],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    out = res.stdout.splitlines()
    assert out[0] == "1000"
    assert out[1] == "1000"
    assert out[2] == "/home/user"
    assert out[3] == "/home/user/app"
    assert out[4] == "/opt/venv"
    assert out[5].startswith("uv ")
    assert out[6] == "/opt/venv/lib/python3.11/site-packages/six.py"
    assert "six==" in res.stderr

    fmt = (
        "{{json .Config.Entrypoint}}|{{.Config.User}}"
        '|{{index .Config.Labels "org.spaceport.python"}}'
    )
    inspect = subprocess.run(
        [docker, "image", "inspect", "--format", fmt, tag],
        capture_output=True,
        text=True,
        check=True,
    )
    assert inspect.stdout.strip() == '["/usr/bin/tini","--"]|user|3.11'
