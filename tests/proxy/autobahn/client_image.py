"""The Autobahn|Testsuite fuzzing client as a local image, built without any registry.

The suite (`wstest`, also its newest release on PyPI) runs on Python 2.7 only. Debian 12 has
no Python 2, and its published image needs a registry; Debian 11 still ships python2.7 and
compilers, so the image is a Debian 11 root filesystem from the host's own apt mirror
(mmdebstrap, as the offline base images are made) with the suite installed from PyPI at the
versions in `constraints-py2.txt`. Built once per machine (about a minute), then reused while
its inputs are unchanged (their digest is the image's tag).
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from spaceport_builder.apt_sources import mirror_lines_for_host
from spaceport_builder.docker_processes import image_labels

HERE = Path(__file__).parent
SUITE = "bullseye"
IMAGE = "spaceport-test/autobahn-client"
PACKAGES = ("python2.7", "python2.7-dev", "gcc", "libc6-dev", "ca-certificates")
# The last pip for Python 2, fetched by the host's pip (Debian 11's own pip wheel is patched
# to Python 3 syntax) and run from the wheel to install itself.
BOOTSTRAP_PIP = "pip==20.3.4"
HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")


def _inputs() -> str:
    digest = hashlib.sha256(" ".join(PACKAGES).encode())
    digest.update((HERE / "constraints-py2.txt").read_bytes())
    return digest.hexdigest()[:16]


def _run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, text=True, capture_output=True, check=False)


def ensure_image() -> str:
    """The client image's reference, building it when missing or out of date."""
    inputs = _inputs()
    ref = f"{IMAGE}:{inputs}"
    if image_labels("docker", ref) is not None:
        return ref
    raw, name = f"{IMAGE}-rootfs:{inputs}", f"autobahn-build-{inputs}"
    with tempfile.TemporaryDirectory(prefix="autobahn-") as tmp:
        rootfs = Path(tmp) / "rootfs.tar"
        mirrors = mirror_lines_for_host(SUITE)
        made = _run(
            "mmdebstrap",
            "--variant=minbase",
            f"--include={','.join(PACKAGES)}",
            SUITE,
            str(rootfs),
            *mirrors,
        )
        assert made.returncode == 0, f"mmdebstrap {SUITE} failed:\n{made.stderr[-3000:]}"
        imported = _run("docker", "import", str(rootfs), raw)
        assert imported.returncode == 0, imported.stderr
        rootfs.unlink()
        fetched = _run(
            sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", tmp, BOOTSTRAP_PIP
        )
        assert fetched.returncode == 0, f"downloading {BOOTSTRAP_PIP} failed:\n{fetched.stderr}"
        wheel = next(Path(tmp).glob("pip-*.whl")).name
        shutil.copy(HERE / "constraints-py2.txt", tmp)
        install = (
            f"python2.7 /in/{wheel}/pip install -q -c /in/constraints-py2.txt pip setuptools wheel"
            " && python2.7 -m pip install -q --no-cache-dir -c /in/constraints-py2.txt"
            " autobahntestsuite && wstest --autobahnversion"
        )
        _run("docker", "rm", "-f", name)
        built = _run(
            "docker",
            "run",
            "--name",
            name,
            "-v",
            f"{tmp}:/in:ro",
            "-v",
            f"{HOST_CA}:/etc/ssl/certs/host-ca.crt:ro",
            "-e",
            "PIP_CERT=/etc/ssl/certs/host-ca.crt",
            "-e",
            "PIP_DISABLE_PIP_VERSION_CHECK=1",
            "-e",
            "PYTHONWARNINGS=ignore",
            raw,
            "sh",
            "-c",
            install,
        )
    try:
        assert built.returncode == 0, (
            f"installing the Autobahn suite failed:\n{built.stderr[-3000:]}"
        )
        committed = _run("docker", "commit", "--change", 'ENTRYPOINT ["wstest"]', name, ref)
        assert committed.returncode == 0, committed.stderr
    finally:
        _run("docker", "rm", "-f", name)
        _run("docker", "rmi", raw)
    return ref
