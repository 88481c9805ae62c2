"""Push a built image to the cluster's registry, where every node pulls what it runs.

Only in cluster mode (`SPACEPORT_REGISTRY`). The image carries every layer below it (the
base image and the compiled dependency stage included), so a node pulls what it lacks and a
second Space on the same dependencies pulls only its own top layers. The build engine may
reach the registry by another name than the nodes (`SPACEPORT_REGISTRY_PUSH`: the dev
cluster's loopback address, which Docker accepts over plain HTTP).
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable

from spaceport.settings import Settings
from spaceport_builder.image_build import BuildFailed, docker_cli


def enabled(settings: Settings) -> bool:
    return settings.runtime == "swarm" and bool(settings.registry)


def push(settings: Settings, tag: str, log: Callable[[str], None]) -> str:
    """Push `tag`; returns the name it has in the registry. Raises BuildFailed."""
    registry = settings.registry_push or settings.registry
    remote = f"{registry}/{tag}"
    cli = docker_cli(settings)
    log(f"Pushing {tag} to the registry {settings.registry}")
    subprocess.run([cli, "tag", tag, remote], check=True, capture_output=True)
    proc = subprocess.Popen(
        [cli, "push", remote], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:
        lines.append(line.rstrip())
        log(line.rstrip())
    rc = proc.wait()
    subprocess.run([cli, "rmi", remote], capture_output=True)  # the local tag stays
    if rc != 0:
        raise BuildFailed(
            f"could not push the image to the registry {registry} (is it running and "
            "reachable from the build engine? SPACEPORT_REGISTRY_PUSH)",
            step="push to the registry",
            output=lines[-20:],
        )
    return f"{settings.registry}/{tag}"
