"""Base images every app builds on: `spaceport/python:{pyver}` and `spaceport/python-cuda:{pyver}`.

Two ways to get the parent of the CPU image:

* registry (production): `python:{pyver}-slim-bookworm` (and `nvidia/cuda` for GPU), pulled;
* offline bootstrap (no registry answers, or `offline=True`): `mmdebstrap` builds a Debian
  bookworm root filesystem from the host's own apt mirror, and `docker import` turns it into
  `spaceport/debian-rootfs:bookworm`. Debian bookworm ships Python 3.11 only, so offline the
  supported versions are `OFFLINE_PYTHONS`; other versions need a registry (or a parent with
  that interpreter, where setup.sh falls back to `uv python install`, which needs network).

Then `runtime_images/python/Dockerfile` (and `runtime_images/python-cuda/Dockerfile`) are built
with BuildKit. The image contract is documented in those Dockerfiles. Builds are idempotent
(an image is rebuilt only when missing or when its inputs changed, see `org.spaceport.inputs`)
and serialised across processes by a file lock in `settings.run_dir`.

CLI: `python -m spaceport_builder.base_images [--python 3.11] [--gpu] [--offline] [--force]`.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import os
import re
import shlex
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from spaceport.settings import Settings, get_settings
from spaceport_builder import registry_push
from spaceport_builder.apt_sources import (
    DEBIAN_SUITE,
    MIRROR_ENV,
    AptSource,
    debian_mirror_lines,
    host_apt_sources,
    mirror_lines_for_host,
    parse_deb822_sources,
    parse_one_line_sources,
)
from spaceport_builder.docker_processes import docker_cli, image_exists
from spaceport_builder.docker_processes import image_labels as _image_labels
from spaceport_builder.docker_processes import probe_pull as _probe_pull
from spaceport_builder.docker_processes import run_logged as _run
from spaceport_builder.errors import BaseImageError

__all__ = [  # re-exported: callers and tests import them from here
    "MIRROR_ENV",
    "AptSource",
    "BaseImageError",
    "debian_mirror_lines",
    "docker_cli",
    "host_apt_sources",
    "image_exists",
    "parse_deb822_sources",
    "parse_one_line_sources",
]

Log = Callable[[str], None]

ROOTFS_IMAGE = f"spaceport/debian-rootfs:{DEBIAN_SUITE}"
# Debian packages of the offline rootfs: the interpreter, venv (ensurepip wheels), TLS roots,
# the init, and useradd/groupadd (`passwd` is not Essential, so minbase lacks it).
ROOTFS_PACKAGES = ("python3", "python3-venv", "ca-certificates", "tini", "passwd")
# What the offline rootfs can provide: Debian bookworm's python3.
OFFLINE_PYTHONS: tuple[str, ...] = ("3.11",)
# What registry parents (python:{pyver}-slim-bookworm) exist for.
REGISTRY_PYTHONS: tuple[str, ...] = ("3.9", "3.10", "3.11", "3.12", "3.13")
REGISTRY_PYTHON_PARENT = "python:{pyver}-slim-bookworm"
REGISTRY_CUDA_PARENT = "nvidia/cuda:12.8.1-runtime-ubuntu24.04"
# Extra index of the GPU image (UV_EXTRA_INDEX_URL): CUDA 12.8 PyTorch wheels. Override with
# $SPACEPORT_TORCH_INDEX_URL (a mirror, or "" where it is unreachable).
TORCH_INDEX_ENV = "SPACEPORT_TORCH_INDEX_URL"
DEFAULT_TORCH_INDEX_URL = "https://download.pytorch.org/whl/cu128"
LABEL_INPUTS = "org.spaceport.inputs"
MMDEBSTRAP_HOOKS = Path("/usr/share/mmdebstrap/hooks")


def _runtime_images_dir() -> Path:
    env = os.environ.get("SPACEPORT_RUNTIME_IMAGES")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "runtime_images"


RUNTIME_IMAGES = _runtime_images_dir()


# --------------------------------------------------------------------------------------------
# Versions and tags


def supported_pythons(offline: bool) -> tuple[str, ...]:
    """Python versions a base image can be built for in this mode."""
    return OFFLINE_PYTHONS if offline else REGISTRY_PYTHONS


def check_python_version(python_version: str, offline: bool | None) -> str:
    """Return `python_version` if it can be provided in this mode, else raise BaseImageError.

    `offline=None` (not decided yet) accepts anything a registry could provide.
    """
    allowed = supported_pythons(bool(offline))
    if python_version in allowed:
        return python_version
    if offline:
        raise BaseImageError(
            f"Python {python_version} is not available offline: the offline base image uses "
            f"Debian {DEBIAN_SUITE}'s python3, so supported versions are "
            f"{', '.join(allowed)}. Other versions need a reachable container registry "
            f"(parent {REGISTRY_PYTHON_PARENT.format(pyver=python_version)}) or a parent "
            "image providing them (`uv python install`, needs network)."
        )
    raise BaseImageError(
        f"Python {python_version} is not supported; supported versions: {', '.join(allowed)} "
        f"(offline: {', '.join(OFFLINE_PYTHONS)})"
    )


def base_image_tag(settings: Settings, python_version: str, gpu: bool) -> str:
    """Tag of the base image: `{base_image_repo}:{pyver}` or `{base_image_repo}-cuda:{pyver}`."""
    repo = settings.base_image_repo
    return f"{repo}-cuda:{python_version}" if gpu else f"{repo}:{python_version}"


# --------------------------------------------------------------------------------------------
# Locks and input digests


@contextlib.contextmanager
def _file_lock(settings: Settings, name: str, log: Log) -> Iterator[None]:
    """Exclusive fcntl lock `settings.run_dir/locks/{name}.lock` (held across processes)."""
    lock_dir = settings.run_dir / "locks"
    lock_dir.mkdir(parents=True, exist_ok=True)
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name)
    with open(lock_dir / f"base-image-{safe}.lock", "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"waiting for another process building {name} ...")
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


_hash_cache: dict[tuple[str, int, int], str] = {}


def _file_digest(path: Path) -> str:
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key not in _hash_cache:
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        _hash_cache[key] = h.hexdigest()
    return _hash_cache[key]


def uv_binary() -> Path:
    """The host venv's uv (pinned in pyproject): `Path(sys.executable).parent / "uv"`."""
    cand = Path(sys.executable).parent / "uv"
    if cand.is_file():
        return cand
    found = shutil.which("uv")
    if found:
        return Path(found)
    raise BaseImageError(
        f"uv not found next to {sys.executable}; install the project (pip install -e .) "
        "so the pinned uv is in its venv"
    )


def torch_index_url() -> str:
    """The GPU image's extra package index: $SPACEPORT_TORCH_INDEX_URL or PyTorch's cu128."""
    return os.environ.get(TORCH_INDEX_ENV, DEFAULT_TORCH_INDEX_URL)


def _ca_bundle(settings: Settings) -> Path | None:
    ca = settings.build_ca_bundle
    if ca is None:
        return None
    if not ca.is_file():
        raise BaseImageError(
            f"build CA bundle {ca} does not exist; fix SPACEPORT_BUILD_CA_BUNDLE or unset it"
        )
    return ca


def _inputs_digest(settings: Settings, python_version: str, gpu: bool) -> str:
    """Digest of everything that goes into a base image except its parent."""
    h = hashlib.sha256()
    h.update(f"python={python_version}\n".encode())
    for rel in ("python/Dockerfile", "python/setup.sh"):
        h.update((RUNTIME_IMAGES / rel).read_bytes())
    h.update(_file_digest(uv_binary()).encode())
    ca = _ca_bundle(settings)
    h.update(_file_digest(ca).encode() if ca else b"no-ca")
    if gpu:
        h.update((RUNTIME_IMAGES / "python-cuda/Dockerfile").read_bytes())
        h.update(f"torch-index={torch_index_url()}".encode())
    return h.hexdigest()[:16]


def _rootfs_digest(mirror_lines: Sequence[str]) -> str:
    h = hashlib.sha256()
    h.update("\n".join([DEBIAN_SUITE, *ROOTFS_PACKAGES, *mirror_lines]).encode())
    h.update((RUNTIME_IMAGES / "bootstrap/customize-rootfs.sh").read_bytes())
    h.update(str((MMDEBSTRAP_HOOKS / "merged-usr").is_dir()).encode())
    return h.hexdigest()[:16]


def _up_to_date(docker: str, tag: str, digest: str) -> bool:
    """The image exists and was built from these inputs (or by someone else: no label)."""
    labels = _image_labels(docker, tag)
    if labels is None:
        return False
    return labels.get(LABEL_INPUTS, digest) == digest


# --------------------------------------------------------------------------------------------
# Offline bootstrap: mmdebstrap + docker import


def ensure_rootfs_image(settings: Settings, *, force: bool = False, log: Log = print) -> str:
    """Make `spaceport/debian-rootfs:bookworm` with mmdebstrap + docker import, if missing."""
    docker = docker_cli(settings)
    mirrors = mirror_lines_for_host()
    digest = _rootfs_digest(mirrors)
    if not force and _up_to_date(docker, ROOTFS_IMAGE, digest):
        return ROOTFS_IMAGE
    with _file_lock(settings, ROOTFS_IMAGE, log):
        if not force and _up_to_date(docker, ROOTFS_IMAGE, digest):
            return ROOTFS_IMAGE
        mmdebstrap = shutil.which("mmdebstrap")
        if not mmdebstrap:
            raise BaseImageError(
                "mmdebstrap not found: install mmdebstrap (apt-get install mmdebstrap) "
                "or make a container registry reachable"
            )
        hook = RUNTIME_IMAGES / "bootstrap/customize-rootfs.sh"
        # merged-/usr via symlinks instead of the usrmerge package (which pulls in perl, ~55 MB)
        merged_usr = MMDEBSTRAP_HOOKS / "merged-usr"
        hook_dirs = [f"--hook-dir={merged_usr}"] if merged_usr.is_dir() else []
        started = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="spaceport-rootfs-") as tmp:
            tarball = Path(tmp) / "rootfs.tar"
            cmd = [
                mmdebstrap,
                "--variant=minbase",
                "--format=tar",
                f"--include={','.join(ROOTFS_PACKAGES)}",
                '--aptopt=Acquire::Languages "none"',
                "--dpkgopt=path-exclude=/usr/share/man/*",
                "--dpkgopt=path-exclude=/usr/share/info/*",
                "--dpkgopt=path-exclude=/usr/share/locale/*",
                "--dpkgopt=path-exclude=/usr/share/doc/*",
                "--dpkgopt=path-include=/usr/share/doc/*/copyright",
                f'--customize-hook=sh {shlex.quote(str(hook))} "$1"',
                *hook_dirs,
                DEBIAN_SUITE,
                str(tarball),
                *mirrors,
            ]
            log(f"$ {' '.join(cmd)}")
            _run(
                cmd,
                log,
                what="mmdebstrap",
                timeout=settings.build_timeout_s,
                hint="mmdebstrap needs root (or unprivileged user namespaces) and the Debian "
                f"mirror from the host's apt sources ({', '.join(mirrors)}) reachable.",
            )
            size_mb = tarball.stat().st_size / 1e6
            log(f"rootfs tarball {size_mb:.0f} MB in {time.monotonic() - started:.1f}s")
            changes = [
                "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "ENV LANG=C.UTF-8",
                'CMD ["/bin/bash"]',
                f"LABEL org.spaceport.base=debian-rootfs {LABEL_INPUTS}={digest}",
            ]
            import_cmd = [docker, "import"]
            for change in changes:
                import_cmd += ["--change", change]
            import_cmd += [str(tarball), ROOTFS_IMAGE]
            log(f"$ {docker} import ... {ROOTFS_IMAGE}")
            _run(import_cmd, log, what="docker import", timeout=settings.build_timeout_s)
        log(f"built {ROOTFS_IMAGE} in {time.monotonic() - started:.1f}s")
    return ROOTFS_IMAGE


# --------------------------------------------------------------------------------------------
# Dockerfile builds


def _split_pem(bundle: Path) -> list[str]:
    text = bundle.read_text(errors="replace")
    return re.findall(
        r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", text, flags=re.DOTALL
    )


def _docker_build(
    settings: Settings,
    *,
    dockerfile: Path,
    tag: str,
    parent: str,
    python_version: str,
    digest: str,
    force: bool,
    log: Log,
    with_assets: bool,
    build_args: dict[str, str] | None = None,
) -> None:
    """`DOCKER_BUILDKIT=1 docker build` of `dockerfile` in a temp context (uv, CA certs)."""
    docker = docker_cli(settings)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="spaceport-base-") as tmp:
        ctx = Path(tmp)
        if with_assets:
            shutil.copy2(dockerfile.parent / "setup.sh", ctx / "setup.sh")
            shutil.copy2(uv_binary(), ctx / "uv")
            (ctx / "ca").mkdir()
            ca = _ca_bundle(settings)
            certs = _split_pem(ca) if ca else []
            if ca and not certs:
                raise BaseImageError(f"build CA bundle {ca} contains no PEM certificate")
            for i, pem in enumerate(certs):
                (ctx / "ca" / f"spaceport-extra-{i:03d}.crt").write_text(pem + "\n")
        cmd = [
            docker,
            "build",
            "--progress=plain",
            "-f",
            str(dockerfile),
            "-t",
            tag,
            "--build-arg",
            f"PARENT={parent}",
            "--build-arg",
            f"PYTHON_VERSION={python_version}",
            "--label",
            f"{LABEL_INPUTS}={digest}",
            "--label",
            f"org.spaceport.parent={parent}",
        ]
        for key, value in (build_args or {}).items():
            cmd += ["--build-arg", f"{key}={value}"]
        if force:
            cmd.append("--no-cache")
        cmd.append(str(ctx))
        log(f"$ DOCKER_BUILDKIT=1 {' '.join(cmd)}")
        _run(
            cmd,
            log,
            what=f"docker build {tag}",
            env={**os.environ, "DOCKER_BUILDKIT": "1"},
            timeout=settings.build_timeout_s,
        )
    log(f"built {tag} in {time.monotonic() - started:.1f}s")


def _decide_offline(docker: str, offline: bool | None, parent: str, log: Log) -> bool:
    """True = bootstrap offline. None: use a local/pullable registry parent, else offline."""
    if offline is not None:
        if (
            not offline
            and _image_labels(docker, parent) is None
            and not _probe_pull(docker, parent, log)
        ):
            raise BaseImageError(
                f"cannot pull {parent}: no container registry answers; build offline instead "
                "(--offline / offline=True) or configure the Docker engine's registry mirror"
            )
        return offline
    if _image_labels(docker, parent) is not None:
        return False
    if _probe_pull(docker, parent, log):
        return False
    log(f"no registry: bootstrapping offline ({ROOTFS_IMAGE} via mmdebstrap)")
    return True


def _ensure(
    settings: Settings,
    python_version: str,
    gpu: bool,
    offline: bool | None,
    force: bool,
    log: Log,
    done: set[str],
) -> str:
    docker = docker_cli(settings)
    tag = base_image_tag(settings, python_version, gpu)
    digest = _inputs_digest(settings, python_version, gpu)
    if tag in done or (not force and _up_to_date(docker, tag, digest)):
        registry_push.publish_base(settings, tag, digest, log)
        return tag
    check_python_version(python_version, offline)
    with _file_lock(settings, tag, log):
        if not force and _up_to_date(docker, tag, digest):
            return tag
        # A build worker on another machine takes the control plane's from the registry.
        if not force and registry_push.pull_base(settings, tag, digest, log):
            if _up_to_date(docker, tag, digest):
                done.add(tag)
                return tag
            log(f"the registry's {tag} was made from other inputs: building it here")
        registry_parent = (
            REGISTRY_CUDA_PARENT if gpu else REGISTRY_PYTHON_PARENT.format(pyver=python_version)
        )
        is_offline = _decide_offline(docker, offline, registry_parent, log)
        check_python_version(python_version, is_offline)
        if not gpu:
            parent = (
                ensure_rootfs_image(settings, force=force and ROOTFS_IMAGE not in done, log=log)
                if is_offline
                else registry_parent
            )
            done.add(ROOTFS_IMAGE)
            _docker_build(
                settings,
                dockerfile=RUNTIME_IMAGES / "python/Dockerfile",
                tag=tag,
                parent=parent,
                python_version=python_version,
                digest=digest,
                force=force,
                log=log,
                with_assets=True,
            )
        else:
            if is_offline:
                parent = _ensure(settings, python_version, False, True, force, log, done)
            else:
                # The CPU contract on top of nvidia/cuda, then the GPU layer on top of that.
                parent = f"{tag}-base"
                _docker_build(
                    settings,
                    dockerfile=RUNTIME_IMAGES / "python/Dockerfile",
                    tag=parent,
                    parent=registry_parent,
                    python_version=python_version,
                    digest=digest,
                    force=force,
                    log=log,
                    with_assets=True,
                )
            _docker_build(
                settings,
                dockerfile=RUNTIME_IMAGES / "python-cuda/Dockerfile",
                tag=tag,
                parent=parent,
                python_version=python_version,
                digest=digest,
                force=force,
                log=log,
                with_assets=False,
                build_args={"TORCH_INDEX_URL": torch_index_url()},
            )
    done.add(tag)
    registry_push.publish_base(settings, tag, digest, log)
    return tag


def ensure_base_image(
    settings: Settings,
    python_version: str | None = None,
    gpu: bool = False,
    *,
    offline: bool | None = None,
    log: Log = print,
) -> str:
    """Make sure the base image exists (building it only if missing or stale); return its tag.

    `offline=True` forces the mmdebstrap bootstrap, `False` requires a registry, `None` uses a
    registry parent when one is local or pullable and bootstraps offline otherwise.
    """
    pyver = python_version or settings.default_python
    if offline:
        check_python_version(pyver, True)
    return _ensure(settings, pyver, gpu, offline, False, log, set())


def build_base_images(
    settings: Settings,
    python_versions: Sequence[str] | None = None,
    gpu: bool = False,
    offline: bool | None = None,
    force: bool = False,
    log: Log = print,
) -> list[str]:
    """Build the CPU base image (and the GPU one if `gpu`) for each version; return the tags.

    `force` rebuilds (without BuildKit cache) even when the images are up to date.
    """
    versions = list(python_versions or [settings.default_python])
    if offline:
        for v in versions:
            check_python_version(v, True)
    done: set[str] = set()
    tags: list[str] = []
    for v in versions:
        tags.append(_ensure(settings, v, False, offline, force, log, done))
        if gpu:
            tags.append(_ensure(settings, v, True, offline, force, log, done))
    return tags


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: build the base images; exit 1 with the actionable message on failure."""
    p = argparse.ArgumentParser(prog="python -m spaceport_builder.base_images")
    p.add_argument("--python", action="append", dest="versions", help="e.g. 3.11 (repeatable)")
    p.add_argument("--gpu", action="store_true", help="also build the python-cuda image")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--offline", dest="offline", action="store_true", default=None)
    mode.add_argument("--registry", dest="offline", action="store_false")
    p.add_argument("--force", action="store_true", help="rebuild even if up to date")
    args = p.parse_args(argv)
    settings = get_settings()
    started = time.monotonic()
    try:
        tags = build_base_images(settings, args.versions, args.gpu, args.offline, args.force)
    except BaseImageError as e:
        print(f"error: {e.message}", file=sys.stderr)
        return 1
    print(f"ready in {time.monotonic() - started:.1f}s: {' '.join(tags)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
