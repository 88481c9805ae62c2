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


_published: set[tuple[str, str, str]] = set()  # (registry, image id, name) pushed here


def base_name(tag: str, inputs: str) -> str:
    """The registry's name of a base image made from `inputs` (its digest): workers of other
    releases or settings each find their own, never another's under the same tag."""
    return f"{tag}-{inputs}"


def publish_base(settings: Settings, tag: str, inputs: str, log: Callable[[str], None]) -> None:
    """Cluster mode: the base image `tag` in the registry, for build workers on other machines
    (`pull_base`)."""
    name = publish(settings, tag, base_name(tag, inputs), log)
    if name:
        log(f"{tag} is in the registry as {name}, for build workers on other machines")


def publish(settings: Settings, tag: str, as_name: str, log: Callable[[str], None]) -> str | None:
    """Cluster mode: the local image `tag` in the registry as `as_name`, once per image and
    process (a push of what the registry has is cheap, not free); its registry name, or None:
    not in cluster mode, no such image here, or the push failed (said through `log`)."""
    if not enabled(settings):
        return None
    cli = docker_cli(settings)
    proc = subprocess.run(
        [cli, "image", "inspect", "--format", "{{.Id}}", tag], capture_output=True, text=True
    )
    key = (settings.registry_push or settings.registry or "", proc.stdout.strip(), as_name)
    name = f"{settings.registry}/{as_name}"
    if proc.returncode != 0:
        return None
    if key in _published:
        return name
    try:
        push(settings, tag, lambda _line: None, as_name=as_name)
    except BuildFailed as exc:  # what needed it does without (another worker builds its own)
        log(f"warning: {exc}")
        return None
    _published.add(key)
    return name


def pull_base(settings: Settings, tag: str, inputs: str, log: Callable[[str], None]) -> bool:
    """Cluster mode: the base image `tag` made from `inputs`, from the registry, as another
    worker pushed it (`publish_base`); False when it has none (the caller builds it)."""
    if not enabled(settings):
        return False
    cli = docker_cli(settings)
    remote = f"{settings.registry_push or settings.registry}/{base_name(tag, inputs)}"
    pulled = subprocess.run([cli, "pull", "--quiet", remote], capture_output=True, text=True)
    if pulled.returncode != 0:
        log(f"the registry has no {tag} of these inputs: building it here")
        return False
    tagged = subprocess.run([cli, "tag", remote, tag], capture_output=True, text=True)
    subprocess.run([cli, "rmi", remote], capture_output=True)  # the local tag stays
    if tagged.returncode != 0:
        log(f"could not tag {remote} as {tag} ({tagged.stderr.strip()[-200:]}): building it")
        return False
    log(f"pulled {tag} from the registry {settings.registry}")
    return True


def push(
    settings: Settings, tag: str, log: Callable[[str], None], as_name: str | None = None
) -> str:
    """Push `tag` (as `as_name`, default the same); returns the name it has in the registry.
    Raises BuildFailed."""
    registry = settings.registry_push or settings.registry
    remote = f"{registry}/{as_name or tag}"
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
    return f"{settings.registry}/{as_name or tag}"
