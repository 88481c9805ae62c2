"""sdk: static — the repo's files served as they are, by Python's http.server."""

from __future__ import annotations

from spaceport_builder.packs.base import PythonPack


class StaticPack(PythonPack):
    sdk = "static"

    def command(self) -> list[str]:
        return ["python", "-m", "http.server", str(self.ctx.config.app_port), "--bind", "0.0.0.0"]
