"""The host's apt sources, read to find the Debian mirror the offline bootstrap uses.

An air-gapped site has a Debian mirror (its machines need one) but often no container
registry: `mmdebstrap` builds the base image's root filesystem from that mirror. The mirror is
read from the host's own apt configuration (deb822 `.sources` and one-line `.list` files), never
written into the project; `$SPACEPORT_DEBIAN_MIRROR` overrides it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from spaceport_builder.errors import BaseImageError

DEBIAN_SUITE = "bookworm"
# Overrides the Debian mirror read from the host's apt sources (e.g. on a non-Debian host).
MIRROR_ENV = "SPACEPORT_DEBIAN_MIRROR"


@dataclass(frozen=True)
class AptSource:
    """One `deb` source: the shape shared by deb822 stanzas and one-line entries."""

    uris: tuple[str, ...]
    suites: tuple[str, ...]
    components: tuple[str, ...] = ()
    types: tuple[str, ...] = ("deb",)
    options: dict[str, str] = field(default_factory=dict, compare=False, hash=False)


def parse_deb822_sources(text: str) -> list[AptSource]:
    """Parse a deb822 `.sources` file (stanzas of `Field: value`, `#` comments)."""
    sources: list[AptSource] = []
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        key: str | None = None
        for raw in stanza.splitlines():
            if raw.startswith("#") or not raw.strip():
                continue
            if raw[0] in " \t" and key is not None:  # continuation line
                fields[key] += "\n" + raw.strip()
                continue
            name, sep, value = raw.partition(":")
            if not sep:
                continue
            key = name.strip().lower()
            fields[key] = value.strip()
        if "uris" not in fields or fields.get("enabled", "yes").lower() == "no":
            continue
        options = {k: v for k, v in fields.items() if k not in {"types", "uris", "suites"}}
        sources.append(
            AptSource(
                uris=tuple(fields["uris"].split()),
                suites=tuple(fields.get("suites", "").split()),
                components=tuple(fields.get("components", "").split()),
                types=tuple(fields.get("types", "deb").split()),
                options=options,
            )
        )
    return sources


def parse_one_line_sources(text: str) -> list[AptSource]:
    """Parse a one-line-style `sources.list`: `deb [opts] URI SUITE [COMPONENT...]`."""
    sources: list[AptSource] = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        options: dict[str, str] = {}
        m = re.match(r"^(\S+)\s+\[([^\]]*)\]\s+(.*)$", line)
        if m:
            kind, opts, rest = m.groups()
            for opt in opts.split():
                k, _, v = opt.partition("=")
                options[k.lower()] = v
        else:
            kind, _, rest = line.partition(" ")
        words = rest.split()
        if len(words) < 2:
            continue
        sources.append(
            AptSource(
                uris=(words[0],),
                suites=(words[1],),
                components=tuple(words[2:]),
                types=(kind,),
                options=options,
            )
        )
    return sources


def host_apt_sources(etc_apt: Path = Path("/etc/apt")) -> list[AptSource]:
    """All sources configured on this host (sources.list, sources.list.d/*.list|*.sources)."""
    sources: list[AptSource] = []
    one_line = [etc_apt / "sources.list", *sorted((etc_apt / "sources.list.d").glob("*.list"))]
    for path in one_line:
        if path.is_file():
            sources += parse_one_line_sources(path.read_text(errors="replace"))
    for path in sorted((etc_apt / "sources.list.d").glob("*.sources")):
        if path.is_file():
            sources += parse_deb822_sources(path.read_text(errors="replace"))
    return sources


def debian_mirror_lines(sources: Sequence[AptSource], suite: str = DEBIAN_SUITE) -> list[str]:
    """The `deb URI SUITE main` lines mmdebstrap needs for `suite`, from the host's sources.

    A source counts as the Debian archive when it serves `suite`/`suite-updates` or its URI
    ends in `/debian`; as the security archive when it serves `suite-security` or its URI ends
    in `/debian-security`. The host may run another Debian release: only the mirror is reused.
    """
    main: list[str] = []
    security: list[str] = []
    for src in sources:
        if "deb" not in src.types:
            continue
        for uri in src.uris:
            if uri.startswith("cdrom:"):
                continue
            path = uri.rstrip("/")
            if f"{suite}-security" in src.suites or path.endswith("/debian-security"):
                bucket = security
            elif (
                suite in src.suites or f"{suite}-updates" in src.suites or path.endswith("/debian")
            ):
                bucket = main
            else:
                continue
            if path not in bucket:
                bucket.append(path)
    if not main:
        raise BaseImageError(
            "no Debian mirror found in the host's apt sources (/etc/apt/sources.list, "
            f"/etc/apt/sources.list.d/*.sources|*.list); set {MIRROR_ENV}=http://<mirror>/debian "
            "or make a container registry reachable"
        )
    lines = [f"deb {main[0]} {suite} main", f"deb {main[0]} {suite}-updates main"]
    if security:
        lines.append(f"deb {security[0]} {suite}-security main")
    return lines


def mirror_lines_for_host(suite: str = DEBIAN_SUITE) -> list[str]:
    """Mirror lines for mmdebstrap: `$SPACEPORT_DEBIAN_MIRROR`, else the host's apt sources."""
    override = os.environ.get(MIRROR_ENV)
    if override:
        return [f"deb {override.rstrip('/')} {suite} main"]
    return debian_mirror_lines(host_apt_sources(), suite)
