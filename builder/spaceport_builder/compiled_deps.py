"""Bytecode for a dependency set, compiled once, off the critical path, then reused.

uv installs without compiling bytecode (fast), and a Gradio app that has to compile its
imports first starts in 7-9 s instead of 3-4 s here. Compiling every installed module takes
longer than the install itself, so a build whose dependency set has no compiled stage cached
yet builds the plain `deps` stage (the app is up sooner), and after the deploy the worker
builds the `deps-compiled` stage (packs/base.py) and tags it `spaceport/deps-compiled:{fp}`
with the dependency fingerprint as a label. Later builds with the same fingerprint, of any
Space, start from the compiled stage: BuildKit finds it in its cache, so the code-only push
costs nothing more and the new version starts fast.

The SDK (Gradio, Streamlit) has stages of its own below the dependency stages (packs/base.py),
warmed the same way and tagged `spaceport/sdk-compiled:{fp}`: a Space whose dependency set was
never built still starts from the SDK's bytecode once any Space of the node with that SDK
version was warmed. The SDK's tag is set after the dependency set's, so a build never sees a
compiled SDK before the compiled dependencies its own earlier builds would reuse. A dependency
set is compiled on the SDK stage its build used (the plain one for a node's first Spaces of an
SDK version): the compiled stage is then the image's own dependency layers plus bytecode, so
the node pool's containers of that set can serve the Spaces built before it (a fresh node that
had its first 20 Spaces pushed at once had none that could take one: every wake restarted a
Gradio app, 8 s under load, instead of 1-2 s).
"""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Callable
from dataclasses import dataclass

from spaceport import build_report
from spaceport.settings import Settings
from spaceport_builder.image_build import BuildRequest, docker_cli, run_build
from spaceport_builder.packs.base import (
    COMPILED_STAGE,
    DEPS_ARG,
    DEPS_STAGE,
    SDK_ARG,
    SDK_COMPILED_STAGE,
    SDK_STAGE,
    BuildPack,
)

LABEL = "org.spaceport.deps"
REPO = build_report.COMPILED_DEPS_REPO
SDK_LABEL = "org.spaceport.sdk"
SDK_REPO = "spaceport/sdk-compiled"
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
    settings: Settings,
    req: BuildRequest,
    dockerfile_text: str,
    base_image: str,
    *,
    sdk: bool = False,
) -> str:
    """What BuildKit's cache keys of the dependency stages (with `sdk`: of the SDK stages,
    which read no repo file and no stage choice) depend on, hashed."""
    h = hashlib.sha256()
    end = f"AS {SDK_COMPILED_STAGE if sdk else COMPILED_STAGE}"
    h.update(dockerfile_text.split(end, 1)[0].encode())
    h.update(_image_id(settings, base_image).encode())
    for key, value in sorted(req.build_args.items()):
        if key != DEPS_ARG and not (sdk and key == SDK_ARG):
            h.update(f"{key}={value}\n".encode())
    for name in () if sdk else DEPS_FILES:
        path = req.context / name
        h.update(name.encode() + (path.read_bytes() if path.is_file() else b"-"))
    return h.hexdigest()[:20]


def tag(fp: str, *, sdk: bool = False) -> str:
    return f"{SDK_REPO}:{fp}" if sdk else build_report.compiled_image(fp)


def is_ready(settings: Settings, fp: str, *, sdk: bool = False) -> bool:
    """Whether the compiled stage of this dependency set (or SDK) was built on this node."""
    label = SDK_LABEL if sdk else LABEL
    proc = subprocess.run(
        [
            docker_cli(settings),
            "image",
            "inspect",
            "--format",
            f'{{{{index .Config.Labels "{label}"}}}}',
            tag(fp, sdk=sdk),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    return proc.returncode == 0 and proc.stdout.strip() == fp


@dataclass
class Stages:
    """Which stages a build starts from, and the fingerprints that chose them."""

    deps_fp: str
    deps_stage: str
    sdk_fp: str | None = None
    sdk_stage: str | None = None

    def report(self) -> dict[str, str | None]:
        return {
            "deps_stage": self.deps_stage or None,
            "deps_fingerprint": self.deps_fp or None,
            "sdk_stage": self.sdk_stage,
            "sdk_fingerprint": self.sdk_fp,
        }


def choose(
    settings: Settings,
    pack: BuildPack,
    req: BuildRequest,
    base: str,
    *,
    compiled: bool,
    sdk_stage: str | None = None,
) -> Stages:
    """Set the stage build args of `req`: the compiled stages where this node has them, else
    the plain ones. A dependency set may have been compiled on either SDK stage (below), so
    with the compiled SDK on the node both are looked for, the compiled SDK's first.

    With `compiled=True` (the warm task): the compiled dependency stage on top of `sdk_stage`,
    the SDK stage the build being warmed used (default: the compiled one). Compiled there, it
    is that build's own dependency layers plus their bytecode, which is what lets the Spaces
    built before it take the node pool's containers (node_pool.same_dependencies): a node's
    first Spaces of an SDK version are built before its compiled SDK exists."""
    text = req.dockerfile.read_text()
    req.build_args.pop(DEPS_ARG, None)
    req.build_args.pop(SDK_ARG, None)
    if not pack.has_sdk_stage():
        return _with_deps(settings, req, text, base, Stages("", DEPS_STAGE), compiled)
    sdk_fp = fingerprint(settings, req, text, base, sdk=True)
    if compiled:
        options = [sdk_stage or SDK_COMPILED_STAGE]
    elif not req.no_cache and is_ready(settings, sdk_fp, sdk=True):
        options = [SDK_COMPILED_STAGE, SDK_STAGE]
    else:
        options = [SDK_STAGE]
    for option in options:
        req.build_args[SDK_ARG] = option
        stages = _with_deps(settings, req, text, base, Stages("", "", sdk_fp, option), compiled)
        if stages.deps_stage == COMPILED_STAGE:
            return stages
    req.build_args[SDK_ARG] = options[0]  # none compiled: the best SDK stage, plain deps
    return _with_deps(settings, req, text, base, Stages("", "", sdk_fp, options[0]), compiled)


def _with_deps(
    settings: Settings, req: BuildRequest, text: str, base: str, stages: Stages, compiled: bool
) -> Stages:
    """`stages` with the dependency stage chosen for the SDK stage `req` names now."""
    stages.deps_fp = fingerprint(settings, req, text, base)
    ready = compiled or is_ready(settings, stages.deps_fp)
    stages.deps_stage = COMPILED_STAGE if ready and not req.no_cache else DEPS_STAGE
    req.build_args[DEPS_ARG] = stages.deps_stage
    return stages


def warm(
    settings: Settings,
    req: BuildRequest,
    stages: Stages,
    log: Callable[[str], None],
    cancelled: Callable[[], bool],
) -> None:
    """Build and tag the compiled stages `stages` names, the dependency set's first (raises
    BuildFailed/BuildCancelled). `req` carries the build args `choose(compiled=True)` set."""
    targets = [(COMPILED_STAGE, stages.deps_fp, False)]
    if stages.sdk_fp and not is_ready(settings, stages.sdk_fp, sdk=True):
        # Only a tag when the dependency stage was compiled on it; else its own compile.
        targets.append((SDK_COMPILED_STAGE, stages.sdk_fp, True))
    for target, fp, sdk in targets:
        warm_req = BuildRequest(
            context=req.context,
            dockerfile=req.dockerfile,
            tag=tag(fp, sdk=sdk),
            build_args=dict(req.build_args),
            secrets=req.secrets,
            target=target,
            labels={SDK_LABEL if sdk else LABEL: fp},
        )
        run_build(settings, warm_req, log, cancelled=cancelled)
    prune(settings)
    prune(settings, repo=SDK_REPO)


def touch(settings: Settings, stages: Stages) -> None:
    """Tag the stages again: a dependency set a Space has just used counts as recent for
    `prune` (which goes by tag time), so another Space's warm no longer untags it meanwhile."""
    refs = [tag(stages.deps_fp)] + ([tag(stages.sdk_fp, sdk=True)] if stages.sdk_fp else [])
    for ref in refs:
        subprocess.run([docker_cli(settings), "tag", ref, ref], capture_output=True, check=False)


def prune(settings: Settings, keep: int = KEEP, repo: str = REPO) -> list[str]:
    """Untag all but the `keep` most recently tagged compiled stages; returns the tags removed.

    By the time of tagging, not of creation: a stage BuildKit had in its cache keeps the
    creation time of its first build, and counting by that removed a just-warmed tag at once.
    """
    docker = docker_cli(settings)
    refs = subprocess.run(
        [docker, "images", repo, "--format", "{{.Repository}}:{{.Tag}}"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split()
    if len(refs) <= keep:
        return []
    tagged = subprocess.run(
        [docker, "image", "inspect", "--format", "{{.Metadata.LastTagTime}}", *refs],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.splitlines()
    if len(tagged) != len(refs):
        return []  # one went away meanwhile: the next warm prunes
    newest_first = [ref for _, ref in sorted(zip(tagged, refs, strict=True), reverse=True)]
    old = newest_first[keep:]
    subprocess.run([docker, "rmi", *old], capture_output=True, check=False)
    return old
