"""The build pack for each SDK: `pack_for(ctx)` is the one place that maps sdk to pack."""

from __future__ import annotations

from spaceport_builder.packs.base import BuildContext, BuildPack
from spaceport_builder.packs.docker import DockerPack
from spaceport_builder.packs.gradio import GradioPack
from spaceport_builder.packs.static import StaticPack
from spaceport_builder.packs.streamlit import StreamlitPack

PACKS: dict[str, type[BuildPack]] = {
    "gradio": GradioPack,
    "streamlit": StreamlitPack,
    "static": StaticPack,
    "docker": DockerPack,
}


def pack_for(ctx: BuildContext) -> BuildPack:
    return PACKS[ctx.config.sdk](ctx)


__all__ = ["PACKS", "BuildContext", "BuildPack", "pack_for"]
