"""sdk: gradio — `python app.py`; Gradio pinned to `sdk_version` when given."""

from __future__ import annotations

from spaceport_builder.packs.base import PythonPack


class GradioPack(PythonPack):
    sdk = "gradio"

    def sdk_requirements(self) -> list[str]:
        version = self.ctx.config.sdk_version
        return [f"gradio=={version}" if version else "gradio"]

    def command(self) -> list[str]:
        return ["python", self.ctx.config.app_file or "app.py"]
