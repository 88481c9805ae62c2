"""A Docker Space's build inputs, as Hugging Face gives them: variables as build args, secrets
as BuildKit secrets (`RUN --mount=type=secret,id=NAME,mode=0444`), never as build args, which
would stay in the image's history. Secret files live in the build's own working dir (0600) and
go with it.

BuildKit leaves secrets out of its cache keys: a step that reads a secret would be reused
after the secret changed, and by another Space with the same Dockerfile and other secrets.
So the builder builds a copy of the Dockerfile with `ARG SPACEPORT_SECRETS_DIGEST` before each
step that mounts a secret, and passes an HMAC (keyed by the node's secret key) of the Space and
its secrets: those steps, and the ones after them, are cached per Space and per secret value.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from spaceport.auth.crypto import _key as node_key  # the node's secret key
from spaceport.auth.crypto import decrypt
from spaceport.db.models import Space
from spaceport.db.session import session_scope
from spaceport.front_matter import ConfigError
from spaceport.settings import Settings
from spaceport_builder.dockerfile_frontend import SYNTAX_ARG, drop_syntax_directive, note
from spaceport_builder.image_build import BuildRequest


@dataclass
class BuildInputs:
    """A Space's variables (build args) and decrypted secrets (BuildKit secrets), for docker."""

    variables: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)


def build_inputs(settings: Settings, space_pk: int) -> BuildInputs:
    inputs = BuildInputs()
    with session_scope() as session:
        space = session.get(Space, space_pk)
        for var in space.variables if space else []:
            if var.is_secret and var.encrypted_value is not None:
                try:
                    inputs.secrets[var.key] = decrypt(settings, var.encrypted_value)
                except Exception as exc:
                    raise ConfigError(
                        f"secret {var.key!r} cannot be decrypted (the node's secret key "
                        "changed?): set it again in the Space settings"
                    ) from exc
            elif var.value is not None:
                inputs.variables[var.key] = var.value
    return inputs


def docker_request(
    settings: Settings,
    space_pk: int,
    req: BuildRequest,
    workdir: Path,
    log: Callable[[str], None] | None = None,
) -> BuildRequest:
    """sdk: docker gets the Space's variables as build args and secrets as BuildKit secrets
    (`RUN --mount=type=secret,id=NAME`), never as build args: those stay in the image."""
    inputs = build_inputs(settings, space_pk)
    # A variable named BUILDKIT_SYNTAX would pick the frontend image (dockerfile_frontend.py).
    req.build_args.update({k: v for k, v in inputs.variables.items() if k != SYNTAX_ARG})
    text = req.dockerfile.read_text(encoding="utf-8", errors="replace")
    text, frontend = drop_syntax_directive(text)
    if frontend is not None and log is not None:
        log(note(frontend))
    if "type=secret" in text:
        text = isolate_secret_steps(text)
        req.build_args[DIGEST_ARG] = secrets_digest(settings, space_pk, inputs.secrets)
    req.dockerfile = workdir / "Dockerfile.spaceport"
    req.dockerfile.write_text(text)
    secret_dir = workdir / "secrets"
    secret_dir.mkdir(mode=0o700)
    for key, value in inputs.secrets.items():
        path = secret_dir / re.sub(r"[^A-Za-z0-9_.-]", "_", key)
        path.touch(mode=0o600)
        path.write_text(value)
        req.secrets[key] = path
    return req


DIGEST_ARG = "SPACEPORT_SECRETS_DIGEST"
INSTRUCTION_RE = re.compile(r"^\s*(\w+)", re.I)


def secrets_digest(settings: Settings, space_pk: int, secrets: dict[str, str]) -> str:
    """Changes when any secret of the Space changes; reveals nothing about their values."""
    message = "\0".join([str(space_pk), *(f"{k}={v}" for k, v in sorted(secrets.items()))])
    return hmac.new(node_key(settings), message.encode(), hashlib.sha256).hexdigest()[:32]


def isolate_secret_steps(dockerfile: str) -> str:
    """The Dockerfile with `ARG SPACEPORT_SECRETS_DIGEST` before each RUN that mounts a secret."""
    lines = dockerfile.splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        start = i
        while lines[i].rstrip().endswith("\\") and i + 1 < len(lines):
            i += 1
        instruction = "\n".join(lines[start : i + 1])
        m = INSTRUCTION_RE.match(instruction)
        if m and m.group(1).upper() == "RUN" and "type=secret" in instruction:
            out.append(f"ARG {DIGEST_ARG}")
        out.extend(lines[start : i + 1])
        i += 1
    return "\n".join(out) + "\n"
