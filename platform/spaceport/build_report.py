"""What a build's report says about the image beneath its app.

The builder writes the report (builder's build_job.py, warm_job.py); the lifecycle starts
containers from the image of compiled dependencies it names (standbys, the node pool). Both
read it here, so the name of that image has one spelling.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

COMPILED_DEPS_REPO = "spaceport/deps-compiled"
COMPILED_STAGE = "deps-compiled"


def compiled_fingerprint(report: Mapping[str, Any] | None) -> str | None:
    """The compiled dependency set the build's final image was (or will next be) built on."""
    report = report or {}
    warmed = report.get("warmed")
    if isinstance(warmed, dict) and warmed.get("deps"):
        return str(warmed["deps"])
    if report.get("deps_stage") == COMPILED_STAGE and report.get("deps_fingerprint"):
        return str(report["deps_fingerprint"])
    return None


def compiled_image(fp: str) -> str:
    """The tag of a compiled dependency set's image (`spaceport/deps-compiled:{fp}`)."""
    return f"{COMPILED_DEPS_REPO}:{fp}"


def prewarm(report: Mapping[str, Any] | None) -> list[str]:
    """The modules a build's report says its app may import ahead, in order (builder's
    prewarm.py; none: no standby)."""
    return [str(m) for m in (report or {}).get("prewarm") or []]
