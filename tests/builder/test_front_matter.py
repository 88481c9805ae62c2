"""README front matter: Hugging Face's keys and defaults, and an actionable message per error."""

from __future__ import annotations

from pathlib import Path

import pytest

from spaceport.front_matter import ConfigError, NoAppFile, load_config, parse_config

FILES = {"app.py", "index.html", "Dockerfile"}


def readme(**keys: str) -> str:
    return "---\n" + "".join(f"{k}: {v}\n" for k, v in keys.items()) + "---\n# Title\n"


@pytest.mark.parametrize(
    ("sdk", "app_file", "port"),
    [
        ("gradio", "app.py", 7860),
        ("streamlit", "app.py", 8501),
        ("static", "index.html", 7860),
        ("docker", None, 7860),
    ],
)
def test_defaults_per_sdk(sdk: str, app_file: str | None, port: int) -> None:
    cfg = parse_config(readme(sdk=sdk), FILES)
    assert (cfg.sdk, cfg.app_file, cfg.app_port) == (sdk, app_file, port)


def test_keys_are_read_and_unknown_keys_kept() -> None:
    cfg = parse_config(
        readme(
            sdk="gradio",
            sdk_version="5.49.1",
            python_version='"3.10.12"',
            app_file="app.py",
            suggested_hardware="t4-small",
            my_own_key="kept",
        ),
        FILES,
    )
    assert cfg.sdk_version == "5.49.1"
    assert cfg.python_version == "3.10"  # base images exist per minor version
    assert cfg.suggested_hardware == "t4-small"
    assert cfg.raw["my_own_key"] == "kept"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("---\nsdk: gradio\ntitle: [unclosed\n---\n", "README.md front matter is not valid YAML"),
        (
            readme(sdk="gradoi"),
            "'sdk' must be one of gradio, streamlit, docker, static (got 'gradoi')",
        ),
        (readme(title="x"), "'sdk' is required; set it to one of gradio, streamlit"),
        (readme(sdk="gradio", app_port="web"), "'app_port' must be a port number (an integer)"),
        (readme(sdk="gradio", app_port="70000"), "'app_port' must be 1-65535 (got 70000)"),
        (readme(sdk="gradio", pinned="maybe"), "'pinned' must be true or false (got 'maybe'"),
        (readme(sdk="docker", egress="blocked"), "'egress' must be true or false (got 'blocked'"),
        (readme(sdk="gradio", tags="ml"), "'tags' must be a list"),
        (
            readme(sdk="gradio", python_version="2.7"),
            "'python_version' must be one of 3.9, 3.10, 3.11, 3.12, 3.13 (got '2.7')",
        ),
        (
            readme(sdk="gradio", python_version="3.10"),
            'YAML reads 3.10 as the number 3.1: quote it, python_version: "3.10"',
        ),
        (
            readme(sdk="gradio", sdk_version="latest"),
            "'sdk_version' must be a version number like 5.49.1 (got 'latest')",
        ),
        (
            readme(sdk="gradio", colorFrom="teal"),
            "'colorFrom' must be one of red, yellow, green, blue, indigo, purple, pink, gray",
        ),
        (
            readme(sdk="gradio", suggested_hardware="gpu-huge"),
            "'suggested_hardware' must be one of cpu-basic, cpu-upgrade",
        ),
        (
            readme(sdk="gradio", startup_duration_timeout="soon"),
            "'startup_duration_timeout' must look like 30m, 1h or 90s (got 'soon')",
        ),
        (readme(sdk="gradio", app_file="../etc/passwd"), "'app_file' must be a path in the repo"),
        ("---\n- a\n- list\n---\n", "must be a YAML mapping of key: value (got a list)"),
    ],
)
def test_config_errors_name_the_key_and_what_is_allowed(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(text, FILES)
    assert message in str(err.value)


def test_missing_app_file_is_no_app_file() -> None:
    with pytest.raises(NoAppFile, match=r"app file 'main\.py' not found in the repo"):
        parse_config(readme(sdk="gradio", app_file="main.py"), FILES)
    with pytest.raises(NoAppFile, match="sdk: docker needs a Dockerfile"):
        parse_config(readme(sdk="docker"), {"app.py"})
    with pytest.raises(NoAppFile, match=r"'index\.html' not found"):
        parse_config(readme(sdk="static"), {"page.html"})


def test_missing_readme_is_config_error(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("print()")
    with pytest.raises(ConfigError, match=r"README\.md is missing"):
        load_config(tmp_path)


def test_examples_parse(examples: Path) -> None:
    sdks = {d.name: load_config(d).sdk for d in sorted(examples.iterdir()) if d.is_dir()}
    assert sdks == {
        "docker-fastapi": "docker",
        "gpu-nvml": "docker",
        "gpu-torch": "gradio",
        "gradio-chat": "gradio",
        "gradio-hello": "gradio",
        "static-site": "static",
        "streamlit-hello": "streamlit",
    }


@pytest.fixture
def examples() -> Path:
    from tests.conftest import EXAMPLES

    return EXAMPLES
