"""Root work on a node of a cluster, done there: a one-shot helper container on the node's
engine runs one of the platform's own stdlib-only modules against the node's kernel.

The control plane may be on another machine than an app's task, so a container's pid and
cgroup files mean nothing here. Like every other node-local step in cluster mode, this goes
through the node's engine API (docs/architecture.md, "Cluster mode"): no agent to install or
keep in step, no shell on the node. The helper runs as root without capabilities (the files it
writes are root's), in the node's pid and cgroup namespaces, with the node's cgroup tree
mounted writable at HOST_CGROUP and no network (not privileged: it needs no device, and
hosts in containers refuse that); its image is any Python 3 (`node_helper_image`, which
`spaceport up` publishes from the base image, run by the image id it published); the module's
source is copied in from this process, so the node runs this release's code.
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

from spaceport.engine import registry_images
from spaceport.engine.base import RuntimeBackendError
from spaceport.settings import Settings

ROOT = "/opt/spaceport-helper"
HOST_CGROUP = "/host/cgroup"
LABEL = "org.spaceport.node-helper"
PUBLISHED_FILE = "node-helper.id"  # in the control plane's data dir
ENGINE_DIR = Path(__file__).parent
WAIT_S = 120  # a squeeze of a few GiB takes seconds; a stuck one is not waited for forever
STOP_S = 30  # then it is told to stop, and given this long to undo what it did


def note_published(settings: Settings, image_id: str) -> None:
    """What `spaceport up` published as the helper image (its id), the only image helpers run
    from."""
    settings.data.mkdir(parents=True, exist_ok=True)
    (settings.data / PUBLISHED_FILE).write_text(image_id)


def published(settings: Settings) -> tuple[str, str]:
    """The helper image's registry name and the id `spaceport up` published; raises
    RuntimeBackendError saying what to do when there is none."""
    if not settings.registry:
        raise RuntimeBackendError(
            "no node helper without a registry (SPACEPORT_REGISTRY): nodes pull only from it"
        )
    try:
        image_id = (settings.data / PUBLISHED_FILE).read_text().strip()
    except OSError:
        image_id = ""
    if not image_id:
        raise RuntimeBackendError(
            "no node helper published yet: run `spaceport up` (it publishes "
            "SPACEPORT_NODE_HELPER_IMAGE to the registry)"
        )
    return registry_images.pulled_as(settings.registry, settings.node_helper_image), image_id


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


def _create(client: docker.DockerClient, image_id: str, command: list[str]) -> str:
    api = client.api
    config = api.create_host_config(
        cap_drop=["ALL"],  # root's own files need no capability; nothing else is touched
        pid_mode="host",
        cgroupns="host",
        userns_mode="host",  # the node's uid 0 (a node with userns-remap)
        security_opt=["label=disable"],  # SELinux: the cgroup tree is the host's
        network_mode="none",
        runtime="runc",  # the node's kernel, whatever runtime its apps default to
        binds={"/sys/fs/cgroup": {"bind": HOST_CGROUP, "mode": "rw"}},
        log_config={"Type": "json-file", "Config": {}},  # its answer is read from its logs
    )
    made = api.create_container(
        image_id,
        command=command,
        entrypoint=[],
        user="0",
        working_dir=ROOT,  # `-m` looks in the working directory first: ours, not the image's
        environment={"PYTHONPATH": ROOT, "PYTHONDONTWRITEBYTECODE": "1"},
        labels={LABEL: "1"},
        host_config=config,
    )
    return str(made["Id"])


def _image(client: docker.DockerClient, image: str, image_id: str) -> None:
    """The helper's image on the node, pulled if it lacks it, and exactly the one `spaceport
    up` published (`image_id`): the helper runs as root in the node's pid and cgroup
    namespaces, so a tag moved in the registry must not decide what runs there."""
    try:
        try:
            found = client.images.get(image)
        except ImageNotFound:
            found = client.images.pull(image)
    except (DockerException, OSError) as exc:
        raise RuntimeBackendError(
            f"the node could not pull its helper {image} (is it in the registry? `spaceport "
            f"up` publishes it; SPACEPORT_NODE_HELPER_IMAGE): {exc}"
        ) from exc
    if found.id != image_id:
        raise RuntimeBackendError(
            f"the node's {image} is {str(found.id)[:19]}, not the image `spaceport up` "
            f"published ({image_id[:19]}): run `spaceport up` again, or remove the node's copy"
        )


def _sweep(client: docker.DockerClient) -> None:
    """Helpers left by a control plane that died while waiting for one."""
    with contextlib.suppress(DockerException, OSError):
        for row in client.api.containers(all=True, filters={"label": LABEL, "status": "exited"}):
            client.api.remove_container(row["Id"], force=True)


def run_module(
    client: docker.DockerClient,
    image: str,
    image_id: str,
    module: str,
    args: list[str],
    also: list[str],
) -> dict[str, Any]:
    """`python3 -m spaceport.engine.<module> ARGS` on the node `client` reaches, from `image`
    (which must be `image_id` there), with the modules `also` it imports; the JSON object its
    last line of output says. RuntimeBackendError with its last error line when it fails."""
    _image(client, image, image_id)
    _sweep(client)
    out = _run(client, image_id, module, args, also)
    try:
        said = json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError) as exc:
        raise RuntimeBackendError(f"the node's helper said {out[-200:]!r}") from exc
    if not isinstance(said, dict):
        raise RuntimeBackendError(f"the node's helper said {out[-200:]!r}")
    return said


def _run(
    client: docker.DockerClient, image_id: str, module: str, args: list[str], also: list[str]
) -> str:
    command = ["python3", "-m", f"spaceport.engine.{module}", *args]
    try:
        cid = _create(client, image_id, command)
    except (DockerException, OSError) as exc:
        raise RuntimeBackendError(f"the node could not make its helper: {exc}") from exc
    try:
        client.api.put_archive(cid, "/", _package([module, *also]))
        client.api.start(cid)
        try:
            status = client.api.wait(cid, timeout=WAIT_S).get("StatusCode", 1)
        except OSError as exc:  # still running after WAIT_S (requests' errors are OSErrors)
            # SIGTERM first: the module's own `finally` puts back what it changed.
            with contextlib.suppress(DockerException, OSError):
                client.api.stop(cid, timeout=STOP_S)
            raise RuntimeBackendError(f"the node's helper did not finish: {exc}") from exc
        out = client.api.logs(cid, stdout=True, stderr=False).decode(errors="replace")
        if status != 0:
            err = client.api.logs(cid, stdout=False, stderr=True).decode(errors="replace")
            last = (err.strip().splitlines() or [f"exit {status}"])[-1]
            raise RuntimeBackendError(f"the node's helper failed: {last}")
        return out
    except (DockerException, OSError) as exc:
        raise RuntimeBackendError(f"the node's helper failed: {exc}") from exc
    finally:
        with contextlib.suppress(DockerException, OSError):
            client.api.remove_container(cid, force=True)
