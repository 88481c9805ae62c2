"""Space config: the YAML front matter of README.md, with Hugging Face's keys and defaults.

Errors name the key, what is allowed and what was found, so the owner can fix the README.
Unknown keys are kept (they are shown as cardData), never fatal.

The one place of this contract, shared by the control plane (Space pages, commits) and the
builder (`spaceport_builder` imports it; `spaceport` never imports the builder).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

SDKS = ("gradio", "streamlit", "docker", "static")
DEFAULT_APP_FILE = {"gradio": "app.py", "streamlit": "app.py", "static": "index.html"}
DEFAULT_PORT = {"streamlit": 8501}
COLORS = ("red", "yellow", "green", "blue", "indigo", "purple", "pink", "gray")
FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)(?:\r?\n)?^---[ \t]*$", re.S | re.M)

# Keys whose type we check; the rest pass through untouched.
STR_KEYS = (
    "title",
    "emoji",
    "colorFrom",
    "colorTo",
    "sdk",
    "sdk_version",
    "python_version",
    "app_file",
    "base_path",
    "suggested_hardware",
    "suggested_storage",
    "license",
    "short_description",
    "startup_duration_timeout",
)
# `egress` is Spaceport's own: false runs the app with no outbound network at all.
BOOL_KEYS = ("pinned", "disable_embedding", "fullWidth", "hf_oauth", "egress")
INT_KEYS = ("app_port",)
LIST_KEYS = ("models", "datasets", "tags", "preload_from_hub")
# Python versions a Space may ask for (`python_version`): those base images exist for.
PYTHON_VERSIONS = ("3.9", "3.10", "3.11", "3.12", "3.13")
PYTHON_VERSION_RE = re.compile(r"^3\.(\d+)(?:\.\d+)?$")
SDK_VERSION_RE = re.compile(r"^\d+(?:\.\d+){0,3}(?:[a-z]+\d*)?$")
# Hugging Face's hardware names that are not in our default flavor table; accepted as hints.
HF_EXTRA_HARDWARE = (
    "zero-a10g",
    "l4x4",
    "l40sx1",
    "l40sx4",
    "l40sx8",
    "a10g-largex4",
    "a100x4",
    "a100x8",
    "inf2x6",
)


class ConfigError(ValueError):
    """README front matter or repo layout is not usable: stage CONFIG_ERROR."""


class NoAppFile(ValueError):
    """The app file the config names does not exist: stage NO_APP_FILE."""


@dataclass
class SpaceConfig:
    sdk: str
    app_file: str | None
    app_port: int
    sdk_version: str | None = None
    python_version: str | None = None
    suggested_hardware: str | None = None
    startup_duration_timeout: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def startup_timeout_s(self) -> int | None:
        return (
            parse_duration(self.startup_duration_timeout) if self.startup_duration_timeout else None
        )


def parse_duration(value: str) -> int:
    m = re.fullmatch(r"\s*(\d+)\s*([smh]?)\s*", value)
    if not m:
        raise ConfigError(
            f"README.md front matter: 'startup_duration_timeout' must look like 30m, 1h or 90s "
            f"(got {value!r})"
        )
    return int(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[m.group(2)]


def split_front_matter(text: str) -> dict[str, Any]:
    m = FRONT_MATTER.match(text)
    if not m:
        return {}
    try:
        data = yaml.safe_load(m.group(1))
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" (line {where.line + 2})" if where is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"README.md front matter is not valid YAML{line}: {problem}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"README.md front matter must be a YAML mapping of key: value (got a "
            f"{type(data).__name__})"
        )
    return {str(k): v for k, v in data.items()}


def _check_types(data: dict[str, Any]) -> None:
    def bad(key: str, want: str) -> ConfigError:
        got = data[key]
        return ConfigError(
            f"README.md front matter: '{key}' must be {want} (got {got!r}, a {type(got).__name__})"
        )

    for key in STR_KEYS:
        if key in data and data[key] is not None:
            if isinstance(data[key], (int, float)) and not isinstance(data[key], bool):
                data[key] = str(data[key])  # `sdk_version: 4.44` is a common float
            if not isinstance(data[key], str):
                raise bad(key, "a string")
    for key in BOOL_KEYS:
        if key in data and data[key] is not None and not isinstance(data[key], bool):
            raise bad(key, "true or false")
    for key in INT_KEYS:
        if (
            key in data
            and data[key] is not None
            and (isinstance(data[key], bool) or not isinstance(data[key], int))
        ):
            raise bad(key, "a port number (an integer)")
    for key in LIST_KEYS:
        if key in data and data[key] is not None and not isinstance(data[key], list):
            raise bad(key, "a list")


def _one_of(key: str, allowed: tuple[str, ...] | list[str], got: object) -> ConfigError:
    return ConfigError(
        f"README.md front matter: '{key}' must be one of {', '.join(allowed)} (got {got!r})"
    )


def _check_values(data: dict[str, Any]) -> None:
    """Values whose type is right but which no build could honour."""
    for key in ("colorFrom", "colorTo"):
        if data.get(key) and data[key] not in COLORS:
            raise _one_of(key, COLORS, data[key])
    pyver = data.get("python_version")
    if pyver:
        m = PYTHON_VERSION_RE.match(pyver)
        if not m or f"3.{m.group(1)}" not in PYTHON_VERSIONS:
            error = _one_of("python_version", PYTHON_VERSIONS, pyver)
            if f"{pyver}0" in PYTHON_VERSIONS:  # YAML read `3.10` as the number 3.1
                error = ConfigError(
                    f"{error}; YAML reads {pyver}0 as the number {pyver}: quote it, "
                    f'python_version: "{pyver}0"'
                )
            raise error
    sdk_version = data.get("sdk_version")
    if sdk_version and not SDK_VERSION_RE.match(sdk_version):
        raise ConfigError(
            "README.md front matter: 'sdk_version' must be a version number like 5.49.1 "
            f"(got {sdk_version!r})"
        )
    hardware = data.get("suggested_hardware")
    if hardware:
        from spaceport.flavors import DEFAULT_FLAVORS

        allowed = [*DEFAULT_FLAVORS, *HF_EXTRA_HARDWARE]
        if hardware not in allowed:
            raise _one_of("suggested_hardware", allowed, hardware)


def parse_config(
    readme: str | None, files: set[str], default_sdk: str | None = None
) -> SpaceConfig:
    """Validate front matter against the repo's file list; raise ConfigError or NoAppFile."""
    if readme is None and default_sdk is None:
        raise ConfigError(
            "README.md is missing: add one whose YAML front matter sets at least 'sdk' "
            f"(one of {', '.join(SDKS)})"
        )
    data = split_front_matter(readme or "")
    _check_types(data)
    _check_values(data)
    sdk = data.get("sdk") or default_sdk
    if sdk is None:
        raise ConfigError(
            f"README.md front matter: 'sdk' is required; set it to one of {', '.join(SDKS)}"
        )
    if sdk not in SDKS:
        raise ConfigError(
            f"README.md front matter: 'sdk' must be one of {', '.join(SDKS)} (got {sdk!r})"
        )
    port = data.get("app_port") or DEFAULT_PORT.get(sdk, 7860)
    if not 1 <= int(port) <= 65535:
        raise ConfigError(f"README.md front matter: 'app_port' must be 1-65535 (got {port})")
    app_file = data.get("app_file") or DEFAULT_APP_FILE.get(sdk)
    if sdk == "docker":
        app_file = None
        if "Dockerfile" not in files:
            raise NoAppFile("sdk: docker needs a Dockerfile at the root of the repo")
    elif app_file is not None:
        if Path(app_file).is_absolute() or ".." in Path(app_file).parts:
            raise ConfigError(
                f"README.md front matter: 'app_file' must be a path in the repo (got {app_file!r})"
            )
        if app_file not in files:
            raise NoAppFile(
                f"app file {app_file!r} not found in the repo: add it, or set 'app_file' in the "
                "README.md front matter"
            )
    cfg = SpaceConfig(
        sdk=sdk,
        app_file=app_file,
        app_port=int(port),
        sdk_version=data.get("sdk_version"),
        python_version=_minor(data.get("python_version")),
        suggested_hardware=data.get("suggested_hardware"),
        startup_duration_timeout=data.get("startup_duration_timeout"),
        raw=data,
    )
    cfg.startup_timeout_s  # noqa: B018 - validates the duration early
    return cfg


def _minor(python_version: str | None) -> str | None:
    """`3.10.12` -> `3.10`: base images exist per minor version."""
    if not python_version:
        return None
    return ".".join(python_version.split(".")[:2])


def load_config(repo_dir: Path, default_sdk: str | None = None) -> SpaceConfig:
    readme_path = repo_dir / "README.md"
    readme = None
    if readme_path.is_file():
        try:
            readme = readme_path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise ConfigError(
                f"README.md is not UTF-8 text (byte {exc.start}): save it as UTF-8"
            ) from exc
    files = {
        str(p.relative_to(repo_dir)) for p in repo_dir.rglob("*") if p.is_file() or p.is_symlink()
    }
    return parse_config(readme, files, default_sdk)
