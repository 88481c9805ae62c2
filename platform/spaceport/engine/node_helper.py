"""Root work on a node of a cluster, done there: a one-shot helper container on the node's
engine runs one of the platform's own stdlib-only modules against the node's kernel.

The control plane may be on another machine than an app's task, so a container's pid and
cgroup files mean nothing here. Like every other node-local step in cluster mode, this goes
through the node's engine API (docs/architecture.md, "Cluster mode"): no agent to install or
keep in step, no shell on the node. The helper runs as root without capabilities (the files it
writes are root's), in the node's pid and cgroup namespaces, with the node's cgroup tree
mounted writable at HOST_CGROUP and no network (not privileged: it needs no device, and
hosts in containers refuse that); its image is any Python 3 (`node_helper_image`, which
`spaceport up` publishes from the base image); the module's source is copied in from this
process, so the node runs this release's code.
"""

from __future__ import annotations

import contextlib
import io
import json
import tarfile
import time
from pathlib import Path
from typing import Any

import docker
from docker.errors import DockerException, ImageNotFound

from spaceport.engine.base import RuntimeBackendError

ROOT = "/opt/spaceport-helper"
HOST_CGROUP = "/host/cgroup"
LABEL = "org.spaceport.node-helper"
ENGINE_DIR = Path(__file__).parent
WAIT_S = 120  # a squeeze of a few GiB takes seconds; a stuck one is not waited for forever


def _package(modules: list[str]) -> bytes:
    """A tar of `spaceport/engine/<module>.py` files under ROOT, with empty package files (the
    real `spaceport/__init__` imports what a node lacks)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        files = {"spaceport/__init__.py": b"", "spaceport/engine/__init__.py": b""}
        for module in modules:
            files[f"spaceport/engine/{module}.py"] = (ENGINE_DIR / f"{module}.py").read_bytes()
        for path, data in files.items():
            info = tarfile.TarInfo(f"{ROOT.strip('/')}/{path}")
            info.size, info.mtime = len(data), int(time.time())
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def _create(client: docker.DockerClient, image: str, command: list[str]) -> str:
    api = client.api
    config = api.create_host_config(
        cap_drop=["ALL"],  # root's own files need no capability; nothing else is touched
        pid_mode="host",
        cgroupns="host",
        network_mode="none",
        runtime="runc",  # the node's kernel, whatever runtime its apps default to
        binds={"/sys/fs/cgroup": {"bind": HOST_CGROUP, "mode": "rw"}},
    )
    made = api.create_container(
        image,
        command=command,
        entrypoint=[],
        user="0",
        environment={"PYTHONPATH": ROOT, "PYTHONDONTWRITEBYTECODE": "1"},
        labels={LABEL: "1"},
        host_config=config,
    )
    return str(made["Id"])


def run_module(
    client: docker.DockerClient, image: str, module: str, args: list[str], also: list[str]
) -> dict[str, Any]:
    """`python3 -m spaceport.engine.<module> ARGS` on the node `client` reaches (the image
    pulled there first if it lacks it), with the modules `also` it imports; the JSON object
    its last line of output says. RuntimeBackendError with its last error line when it
    fails."""
    out = _run(client, image, module, args, also)
    try:
        said = json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError) as exc:
        raise RuntimeBackendError(f"the node's helper said {out[-200:]!r}") from exc
    if not isinstance(said, dict):
        raise RuntimeBackendError(f"the node's helper said {out[-200:]!r}")
    return said


def _run(
    client: docker.DockerClient, image: str, module: str, args: list[str], also: list[str]
) -> str:
    command = ["python3", "-m", f"spaceport.engine.{module}", *args]
    try:
        try:
            cid = _create(client, image, command)
        except ImageNotFound:
            client.images.pull(image)
            cid = _create(client, image, command)
    except DockerException as exc:
        raise RuntimeBackendError(
            f"the node could not start its helper from {image} (is it in the registry? "
            f"`spaceport up` publishes it; SPACEPORT_NODE_HELPER_IMAGE): {exc}"
        ) from exc
    try:
        client.api.put_archive(cid, "/", _package([module, *also]))
        client.api.start(cid)
        status = client.api.wait(cid, timeout=WAIT_S).get("StatusCode", 1)
        out = client.api.logs(cid, stdout=True, stderr=False).decode(errors="replace")
        if status != 0:
            err = client.api.logs(cid, stdout=False, stderr=True).decode(errors="replace")
            last = (err.strip().splitlines() or [f"exit {status}"])[-1]
            raise RuntimeBackendError(f"the node's helper failed: {last}")
        return out
    except DockerException as exc:
        raise RuntimeBackendError(f"the node's helper failed: {exc}") from exc
    except OSError as exc:  # the engine's wait timing out (requests' errors are OSErrors)
        raise RuntimeBackendError(f"the node's helper did not finish: {exc}") from exc
    finally:
        with contextlib.suppress(DockerException):
            client.api.remove_container(cid, force=True)
