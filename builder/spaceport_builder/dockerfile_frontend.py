"""Repo Dockerfiles build with the engine's built-in Dockerfile frontend, never one they name.

A `# syntax=image` parser directive (or a `BUILDKIT_SYNTAX` build argument) makes BuildKit run
that image as the frontend: code chosen by the Space's author, which decides what the build
may do (it could ask for host networking or insecure steps the built-in frontend refuses).
Hugging Face Dockerfiles often start with `# syntax=docker/dockerfile:1`; the built-in frontend
understands what those need (`RUN --mount=type=secret|cache`), so the line is dropped with a
note in the build log rather than failing the build.
"""

from __future__ import annotations

import re

# Parser directives: `# key=value` lines before any other line (comments, blanks, steps).
_DIRECTIVE = re.compile(r"^\s*#\s*([a-zA-Z]+)\s*=\s*(.*?)\s*$")
SYNTAX_ARG = "BUILDKIT_SYNTAX"


def drop_syntax_directive(dockerfile: str) -> tuple[str, str | None]:
    """The Dockerfile without its `# syntax=` directive, and the frontend it named (or None)."""
    lines = dockerfile.splitlines(keepends=True)
    for i, line in enumerate(lines):
        match = _DIRECTIVE.match(line)
        if match is None:
            break  # directives end at the first line that is not one
        if match.group(1).lower() == "syntax":
            return "".join(lines[:i] + lines[i + 1 :]), match.group(2)
    return dockerfile, None


def note(frontend: str) -> str:
    return (
        f"Note: ignoring `# syntax={frontend}`: Spaceport builds every Dockerfile with the "
        "engine's built-in frontend (RUN --mount=type=secret and type=cache work as usual)."
    )
