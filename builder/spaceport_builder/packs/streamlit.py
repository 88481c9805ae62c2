"""sdk: streamlit — `streamlit run app.py` on the app port."""

from __future__ import annotations

from spaceport_builder.packs.base import PythonPack


class StreamlitPack(PythonPack):
    sdk = "streamlit"

    def sdk_requirements(self) -> list[str]:
        version = self.ctx.config.sdk_version
        return [f"streamlit=={version}" if version else "streamlit"]

    def command(self) -> list[str]:
        port = str(self.ctx.config.app_port)
        return [
            "streamlit",
            "run",
            self.ctx.config.app_file or "app.py",
            "--server.port",
            port,
            "--server.address",
            "0.0.0.0",
        ]
