"""Build packs: one per SDK, each answering a few questions; `render()` makes the Dockerfile.

Shaped after repo2docker's BuildPack. Layers are ordered so a push that changes only app code
reuses every dependency layer: system packages, then pre-requirements, then requirements,
then the code. Dependency installs use uv with a BuildKit cache mount shared by all builds.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

from spaceport_builder.front_matter import SpaceConfig

UV_CACHE = "--mount=type=cache,target=/home/user/.cache/uv,uid=1000,gid=1000,sharing=shared"
APT_CACHE = (
    "--mount=type=cache,target=/var/cache/apt,sharing=locked "
    "--mount=type=cache,target=/var/lib/apt/lists,sharing=locked"
)


@dataclass
class BuildContext:
    """What a pack may look at: the repo's files and the resolved config."""

    repo_dir: Path
    config: SpaceConfig
    base_image: str

    def has(self, name: str) -> bool:
        return (self.repo_dir / name).is_file()

    def lines(self, name: str) -> list[str]:
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


class PythonPack(BuildPack):
    """Shared by the Python SDKs: apt packages, pre-requirements, requirements, code."""

    def sdk_requirements(self) -> list[str]:
        return []

    @abstractmethod
    def command(self) -> list[str]:
        """The app's start command."""

    def render(self) -> str:
        ctx = self.ctx
        out = [
            f"FROM {ctx.base_image}",
            "ARG UV_INDEX_URL",
            "ARG UV_EXTRA_INDEX_URL",
            "ARG PIP_INDEX_URL",
            "ARG PIP_EXTRA_INDEX_URL",
        ]
        packages = ctx.lines("packages.txt")
        if packages:
            out += [
                "USER root",
                f"RUN {APT_CACHE} apt-get update -qq && "
                "DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "
                + " ".join(json.dumps(p) for p in packages),
                "USER user",
            ]
        out.append("WORKDIR /home/user/app")
        if ctx.has("pre-requirements.txt"):
            out += [
                "COPY --chown=1000:1000 pre-requirements.txt /tmp/pre-requirements.txt",
                f"RUN {UV_CACHE} uv pip install -r /tmp/pre-requirements.txt",
            ]
        sdk_reqs = self.sdk_requirements()
        if ctx.has("requirements.txt"):
            out.append("COPY --chown=1000:1000 requirements.txt /tmp/requirements.txt")
        install = " ".join(json.dumps(r) for r in sdk_reqs)
        if ctx.has("requirements.txt"):
            install += " -r /tmp/requirements.txt"
        if install.strip():
            out.append(f"RUN {UV_CACHE} uv pip install {install.strip()}")
        out += [
            "COPY --chown=1000:1000 . /home/user/app",
            f"EXPOSE {ctx.config.app_port}",
            f"CMD {json.dumps(self.command())}",
        ]
        return "\n".join(out) + "\n"
