"""sdk: docker — the repo's own Dockerfile, built as is; it must listen on `app_port`."""

from __future__ import annotations

from spaceport_builder.packs.base import BuildPack


class DockerPack(BuildPack):
    sdk = "docker"

    def render(self) -> str:
        return (self.ctx.repo_dir / "Dockerfile").read_text(encoding="utf-8", errors="replace")

    def uses_repo_dockerfile(self) -> bool:
        return True
