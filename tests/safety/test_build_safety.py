"""Strangers' Dockerfiles build in a box: no host files (runc CVE-2024-21626), no host network
or insecure mode, and no way to host services or a metadata address from a build step."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import Node, unique

pytestmark = pytest.mark.slow
PROBE = Path(__file__).parent / "probe_app"


def docker_space(node: Node, tmp: Path, dockerfile: str) -> tuple[str, Path]:
    src = tmp / unique("df")
    shutil.copytree(PROBE, src)
    (src / "Dockerfile").write_text(dockerfile)
    space = node.create_space(unique("build-safety"), sdk="docker")
    return space, src


def test_leaky_vessels_workdir_cannot_reach_host(node: Node, tmp_path: Path) -> None:
    space, src = docker_space(
        node,
        tmp_path,
        (
            "FROM spaceport/python:3.11\n"
            "WORKDIR /proc/self/fd/7\n"
            "RUN ls -la ../../../../ && cat ../../../../etc/hostname\n"
        ),
    )
    assert node.push(src, space).returncode == 0
    rt, _ = node.wait_stage(space, {"BUILD_ERROR"})
    assert "not a directory" in rt["errorMessage"], rt["errorMessage"]


@pytest.mark.parametrize("flag", ["--network=host", "--security=insecure"])
def test_privileged_run_flags_refused(node: Node, tmp_path: Path, flag: str) -> None:
    space, src = docker_space(
        node, tmp_path, (f"FROM spaceport/python:3.11\nRUN {flag} echo escaped\n")
    )
    assert node.push(src, space).returncode == 0
    rt, _ = node.wait_stage(space, {"BUILD_ERROR"})
    assert flag.split("=")[0].lstrip("-") in rt["errorMessage"], rt["errorMessage"]


def test_build_steps_cannot_reach_host_services(node: Node, tmp_path: Path) -> None:
    check = (
        "import socket\n"
        "gw = '.'.join(str(b) for b in bytes.fromhex([l.split()[2] for l in "
        "open('/proc/net/route').readlines()[1:] if l.split()[1] == '00000000'][0])[::-1])\n"
        f"targets = [(gw, 6379), (gw, {node.settings.api_port}), (gw, 5432), "
        "('169.254.169.254', 80)]\n"
        "for host, port in targets:\n"
        "    s = socket.socket(); s.settimeout(2)\n"
        "    assert s.connect_ex((host, port)) != 0, f'build reached {host}:{port}'\n"
        "print('host services unreachable from the build')\n"
    )
    space, src = docker_space(
        node,
        tmp_path,
        (
            "FROM spaceport/python:3.11\n"
            "COPY --chown=1000:1000 . /home/user/app\n"
            "RUN python /home/user/app/check.py\n"
            'CMD ["python", "/home/user/app/probe.py"]\n'
        ),
    )
    (src / "check.py").write_text(check)
    assert node.push(src, space).returncode == 0
    rt, _ = node.wait_stage(space, {"RUNNING", "BUILD_ERROR"})
    assert rt["stage"] == "RUNNING", rt.get("errorMessage")


def test_dockerfile_cannot_choose_its_frontend(node: Node, tmp_path: Path) -> None:
    """`# syntax=image` would run an image of the author's choosing as BuildKit's frontend:
    the line is ignored (noted in the build log), the built-in frontend builds, and what it
    refuses stays refused; a BUILDKIT_SYNTAX variable is not passed on either."""
    evil = "registry.invalid/evil/frontend:1"
    space, src = docker_space(
        node,
        tmp_path,
        f"# syntax={evil}\n# escape=\\\n" + (PROBE / "Dockerfile").read_text(),
    )
    with node.api() as c:
        r = c.post(f"/api/spaces/{space}/variables", json={"key": "BUILDKIT_SYNTAX", "value": evil})
        assert r.status_code == 200, r.text
    assert node.push(src, space).returncode == 0
    node.wait_stage(space, {"RUNNING"}, timeout=180)
    with node.api() as c:
        log = c.get(f"/api/spaces/{space}/logs/build", timeout=30).text
    assert f"ignoring `# syntax={evil}`" in log

    space, src = docker_space(
        node, tmp_path, f"# syntax={evil}\nFROM spaceport/python:3.11\nRUN --network=host true\n"
    )
    assert node.push(src, space).returncode == 0
    rt, _ = node.wait_stage(space, {"BUILD_ERROR"})
    assert "network" in rt["errorMessage"], rt["errorMessage"]
