"""Bytecode for a dependency set, compiled once, off the critical path, then reused.

uv installs without compiling bytecode (fast), and a Gradio app that has to compile its
imports first starts in 7-9 s instead of 3-4 s here. Compiling every installed module takes
longer than the install itself, so a build whose dependency set has no compiled stage cached
yet builds the plain `deps` stage (the app is up sooner), and after the deploy the worker
builds the `deps-compiled` stage (packs/base.py) and tags it `spaceport/deps-compiled:{fp}`
with the dependency fingerprint as a label. Later builds with the same fingerprint, of any
Space, start from the compiled stage: BuildKit finds it in its cache, so the code-only push
costs nothing more and the new version starts fast.
"""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Callable

from spaceport.settings import Settings
from spaceport_builder.image_build import BuildRequest, docker_cli, run_build
from spaceport_builder.packs.base import COMPILED_STAGE, DEPS_ARG

LABEL = "org.spaceport.deps"
REPO = "spaceport/deps-compiled"
KEEP = 10  # most recent dependency sets kept tagged; older tags are removed (layers in use stay)
# The repo files the `deps` stage reads; everything else only reaches the final stage.
DEPS_FILES = ("pre-requirements.txt", "requirements.txt")


def _image_id(settings: Settings, ref: str) -> str:
    proc = subprocess.run(
        [docker_cli(settings), "image", "inspect", "--format", "{{.Id}}", ref],
        capture_output=True,
        text=True,
        check=False,
    )
    return proc.stdout.strip() if proc.returncode == 0 else ""


def fingerprint(
    settings: Settings, req: BuildRequest, dockerfile_text: str, base_image: str
) -> str:
    """What BuildKit's cache keys of the dependency stages depend on, hashed."""
    h = hashlib.sha256()
    h.update(dockerfile_text.split(f"AS {COMPILED_STAGE}", 1)[0].encode())
    h.update(_image_id(settings, base_image).encode())
    for key, value in sorted(req.build_args.items()):
        if key != DEPS_ARG:
            h.update(f"{key}={value}\n".encode())
    for name in DEPS_FILES:
        path = req.context / name
        h.update(name.encode() + (path.read_bytes() if path.is_file() else b"-"))
    return h.hexdigest()[:20]


def tag(fp: str) -> str:
    return f"{REPO}:{fp}"


def is_ready(settings: Settings, fp: str) -> bool:
    """Whether the compiled stage of this dependency set was built on this node."""
    proc = subprocess.run(
        [
            docker_cli(settings),
            "image",
            "inspect",
            "--format",
            f'{{{{index .Config.Labels "{LABEL}"}}}}',
            tag(fp),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    return proc.returncode == 0 and proc.stdout.strip() == fp


def warm(
    settings: Settings,
    req: BuildRequest,
    fp: str,
    log: Callable[[str], None],
    cancelled: Callable[[], bool],
) -> None:
    """Build and tag the compiled stage for `fp` (raises BuildFailed/BuildCancelled)."""
    warm_req = BuildRequest(
        context=req.context,
        dockerfile=req.dockerfile,
        tag=tag(fp),
        build_args={**req.build_args, DEPS_ARG: COMPILED_STAGE},
        secrets=req.secrets,
        target=COMPILED_STAGE,
        labels={LABEL: fp},
    )
    run_build(settings, warm_req, log, cancelled=cancelled)
    prune(settings)


def prune(settings: Settings, keep: int = KEEP) -> list[str]:
    """Untag all but the `keep` newest compiled stages; returns the tags removed."""
    docker = docker_cli(settings)
    listed = subprocess.run(
        [docker, "images", REPO, "--format", "{{.CreatedAt}}\t{{.Repository}}:{{.Tag}}"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.splitlines()
    old = [line.split("\t")[1] for line in sorted(listed, reverse=True)[keep:]]
    if old:
        subprocess.run([docker, "rmi", *old], capture_output=True, check=False)
    return old
