"""Build packs: one per SDK, each answering a few questions; `render()` makes the Dockerfile.

Shaped after repo2docker's BuildPack. Layers are ordered so a push that changes only app code
reuses every dependency layer: system packages, then pre-requirements, then requirements, then
the code. Dependency installs use uv with a BuildKit cache mount shared by all builds.

Python packs render up to five stages:

* `sdk`: the base image plus the SDK alone (Gradio or Streamlit at the Space's `sdk_version`),
  and `sdk-compiled`: that plus its bytecode. They depend on nothing in the repo, so every Space
  of the node that asks for the same SDK version shares them: a new Space with requirements of
  its own installs only those, and starts from the SDK's bytecode on its first deploy;
* `deps`: the SDK stage plus every dependency (the layers a code-only push reuses);
* `deps-compiled`: `deps` plus the bytecode of every installed module, so an app starts without
  compiling gradio's thousands of modules first (3-4 s instead of 7-9 s here);
* the final image: `FROM ${SPACEPORT_DEPS}` plus the code.

Compiling takes longer than installing, so the builder picks `SPACEPORT_DEPS=deps` (and
`SPACEPORT_SDK=sdk`) when the compiled stage is not in the cache yet (the first build of a
dependency set: the app is up sooner) and warms the compiled stages after the deploy; later
builds then use them (compiled_deps.py). A Space with `pre-requirements.txt` has no SDK stage:
those are installed before anything else, the SDK included.
"""

from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

from spaceport import build_report
from spaceport.front_matter import SpaceConfig

APP_DIR = "/home/user/app"
UV_CACHE_TARGET = "/home/user/.cache/uv"
APT_CACHE = (
    "--mount=type=cache,target=/var/cache/apt,sharing=locked "
    "--mount=type=cache,target=/var/lib/apt/lists,sharing=locked"
)
# The build arg naming the stage the final image starts from (see the module docstring).
DEPS_ARG = "SPACEPORT_DEPS"
DEPS_STAGE = "deps"
COMPILED_STAGE = build_report.COMPILED_STAGE
# Likewise for the SDK stage the `deps` stage starts from.
SDK_ARG = "SPACEPORT_SDK"
SDK_STAGE = "sdk"
SDK_COMPILED_STAGE = "sdk-compiled"
COMPILE = "RUN python -m compileall -q -j 0 /opt/venv/lib >/dev/null 2>&1 || true"
# Index settings the builder passes as build args (an operator's mirror, extra indexes).
INDEX_ARGS = ("UV_INDEX_URL", "UV_EXTRA_INDEX_URL", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL")
TORCH_RE = re.compile(r"^\s*(torch|torchvision|torchaudio)\s*($|[=<>!~\[;@ ])", re.I)


@dataclass
class BuildContext:
    """What a pack may look at: the repo's files, the resolved config, and how to install."""

    repo_dir: Path
    config: SpaceConfig
    base_image: str
    installer: str = "uv"  # "uv" (cache mount) or "pip" (plain, no cache: the baseline)
    cache: bool = True
    cache_id: str = "spaceport-uv"
    gpu: bool = False
    torch_index_url: str = ""

    def has(self, name: str) -> bool:
        return (self.repo_dir / name).is_file()

    def lines(self, name: str) -> list[str]:
        """Non-empty, non-comment lines of a repo file ([] when it is absent)."""
        if not self.has(name):
            return []
        text = (self.repo_dir / name).read_text(encoding="utf-8", errors="replace")
        return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]


class BuildPack(ABC):
    sdk: str

    def __init__(self, ctx: BuildContext) -> None:
        self.ctx = ctx

    @abstractmethod
    def render(self) -> str:
        """The Dockerfile for this repo."""

    def uses_repo_dockerfile(self) -> bool:
        return False

    def has_compiled_stage(self) -> bool:
        """Whether the Dockerfile has a `deps-compiled` stage worth warming after a deploy."""
        return False

    def has_sdk_stage(self) -> bool:
        """Whether the Dockerfile has the shared `sdk`/`sdk-compiled` stages."""
        return False


class PythonPack(BuildPack):
    """Shared by the Python SDKs: apt packages, pre-requirements, requirements, code."""

    def sdk_requirements(self) -> list[str]:
        return []

    @abstractmethod
    def command(self) -> list[str]:
        """The app's start command."""

    def has_compiled_stage(self) -> bool:
        """pip compiles bytecode as it installs; a build without cache has nothing to reuse."""
        return self.ctx.installer == "uv" and self.ctx.cache

    def has_sdk_stage(self) -> bool:
        return (
            self.has_compiled_stage()
            and bool(self.sdk_requirements())
            and not self.ctx.has("pre-requirements.txt")
        )

    def sdk_stages(self) -> list[str]:
        """The SDK alone, then its bytecode: shared by every Space asking for this SDK."""
        args = " ".join(json.dumps(r) for r in self.sdk_requirements())
        return [
            f"FROM {self.ctx.base_image} AS {SDK_STAGE}",
            *(f"ARG {a}" for a in INDEX_ARGS),
            self.install(args),
            "",
            f"FROM {SDK_STAGE} AS {SDK_COMPILED_STAGE}",
            COMPILE,
            "",
        ]

    def install(self, args: str, *, torch: bool = False) -> str:
        """One `RUN` that installs `args` into /opt/venv with the configured installer."""
        ctx = self.ctx
        extra = f"--extra-index-url {ctx.torch_index_url} " if torch and ctx.torch_index_url else ""
        if ctx.installer == "pip":
            return f"RUN pip install --no-cache-dir {extra}{args}"
        mount = ""
        if ctx.cache:
            mount = (
                f"--mount=type=cache,id={ctx.cache_id},target={UV_CACHE_TARGET},"
                "uid=1000,gid=1000,sharing=shared "
            )
        return f"RUN {mount}uv pip install {extra}{args}"

    def wants_torch_index(self, *files: str) -> bool:
        """GPU builds take torch from the CUDA PyTorch index when a requirement names it."""
        if not self.ctx.gpu:
            return False
        return any(TORCH_RE.match(line) for f in files for line in self.ctx.lines(f))

    def deps_stage(self) -> list[str]:
        ctx = self.ctx
        parent = f"${{{SDK_ARG}}}" if self.has_sdk_stage() else ctx.base_image
        out = [f"FROM {parent} AS {DEPS_STAGE}", *(f"ARG {a}" for a in INDEX_ARGS)]
        packages = ctx.lines("packages.txt")
        if packages:
            apt_mount = f"{APT_CACHE} " if ctx.cache else ""
            out += [
                "USER root",
                f"RUN {apt_mount}apt-get update -qq && "
                "DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "
                + " ".join(json.dumps(p) for p in packages),
                "USER user",
            ]
        out.append(f"WORKDIR {APP_DIR}")
        if ctx.has("pre-requirements.txt"):
            out += [
                "COPY --chown=1000:1000 pre-requirements.txt /tmp/pre-requirements.txt",
                self.install(
                    "-r /tmp/pre-requirements.txt",
                    torch=self.wants_torch_index("pre-requirements.txt"),
                ),
            ]
        args = " ".join(json.dumps(r) for r in self.sdk_requirements())
        if ctx.has("requirements.txt"):
            out.append("COPY --chown=1000:1000 requirements.txt /tmp/requirements.txt")
            args = f"{args} -r /tmp/requirements.txt".strip()
        if args:
            out.append(self.install(args, torch=self.wants_torch_index("requirements.txt")))
        return out

    def render(self) -> str:
        ctx = self.ctx
        if self.has_compiled_stage():
            out = [f"ARG {DEPS_ARG}={COMPILED_STAGE}"]
            if self.has_sdk_stage():
                out += [f"ARG {SDK_ARG}={SDK_COMPILED_STAGE}", *self.sdk_stages()]
            out += [
                *self.deps_stage(),
                "",
                f"FROM {DEPS_STAGE} AS {COMPILED_STAGE}",
                COMPILE,
                "",
                f"FROM ${{{DEPS_ARG}}}",
            ]
        else:
            out = [*self.deps_stage(), "", f"FROM {DEPS_STAGE}"]
        out += [
            f"COPY --chown=1000:1000 . {APP_DIR}",
            f"EXPOSE {ctx.config.app_port}",
            f"CMD {json.dumps(self.command())}",
        ]
        return "\n".join(out) + "\n"
