"""An image's configuration (entrypoint, command, layers) read from the cluster's registry, for
images the control plane's engine never had: a build worker on another machine built and
pushed them (`spaceport worker --builds-only`). Two requests of the registry's HTTP API (the
manifest, then its config blob); None when the registry refuses (one with auth) or has no such
image, and the caller does without it.
"""

from __future__ import annotations

import platform
from typing import Any

import httpx
import structlog

log = structlog.get_logger(__name__)

INDEXES = (
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.index.v1+json",
)
MANIFESTS = ", ".join(
    (
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        *INDEXES,
    )
)


ARCH = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())


def pulled_as(registry: str | None, image: str) -> str:
    """The name the nodes pull `image` by: in the registry, unless it names it already (or
    there is none)."""
    if not registry or image.startswith(f"{registry}/"):
        return image
    return f"{registry}/{image}"


def _platform_manifest(index: dict[str, Any]) -> str | None:
    """An index's manifest for this machine's platform (attestations, `unknown/unknown`, left
    out): the nodes run the same."""
    for entry in index.get("manifests") or []:
        found = entry.get("platform") or {}
        if found.get("os") == "linux" and found.get("architecture") == ARCH:
            return str(entry["digest"])
    return None


def image_config(registry: str, image: str, timeout: float = 5.0) -> dict[str, Any] | None:
    """The `Config` of `image` (`name:tag`, without the registry) as `docker inspect` shows it."""
    blob = _config_blob(registry, image, timeout)
    config = (blob or {}).get("config")
    return config if isinstance(config, dict) else None


def image_layers(registry: str, image: str, timeout: float = 5.0) -> list[str] | None:
    """The layers of `image`, base first, as `docker inspect` shows them (`RootFS.Layers`: the
    uncompressed digests, the same whichever engine pushed them)."""
    blob = _config_blob(registry, image, timeout)
    layers = ((blob or {}).get("rootfs") or {}).get("diff_ids")
    return [str(layer) for layer in layers] if isinstance(layers, list) else None


def _config_blob(registry: str, image: str, timeout: float) -> dict[str, Any] | None:
    """The image's configuration blob (its `config` and `rootfs`, among others)."""
    name, _, tag = image.rpartition(":")
    if not name or "/" in tag:
        name, tag = image, "latest"
    for scheme in ("https", "http"):  # as Docker does for a registry on a private address
        base = f"{scheme}://{registry}/v2/{name}"
        try:
            with httpx.Client(timeout=timeout) as client:
                manifest = client.get(f"{base}/manifests/{tag}", headers={"Accept": MANIFESTS})
                if manifest.status_code != 200:
                    log.info("registry.no_manifest", image=image, status=manifest.status_code)
                    return None
                body = manifest.json()
                if body.get("mediaType") in INDEXES or "manifests" in body:
                    chosen = _platform_manifest(body)
                    if chosen is None:
                        log.warning("registry.no_platform", image=image)
                        return None
                    manifest = client.get(
                        f"{base}/manifests/{chosen}", headers={"Accept": MANIFESTS}
                    )
                    manifest.raise_for_status()
                    body = manifest.json()
                digest = body["config"]["digest"]
                blob = client.get(f"{base}/blobs/{digest}")
                blob.raise_for_status()
                found = blob.json()
                return found if isinstance(found, dict) else None
        except httpx.ConnectError:
            continue
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            log.warning("registry.unreadable", image=image, error=str(exc)[:200])
            return None
    return None
