"""Which Spaces may take a node pool container (lifecycle/node_pool.py), decided by their
environment: no node needed. A pool container imported its modules with only the platform's
common variables, so a Space whose own variables could change what an import does starts in
a fresh interpreter instead."""

from __future__ import annotations

from spaceport.lifecycle.env import platform_env
from spaceport.lifecycle.node_pool import env_fits, fit_digest
from spaceport.settings import Settings

SETTINGS = Settings(url="http://localhost:8080")
GRADIO = ["gradio"]


def env(**own: str) -> dict[str, str]:
    """A Space's environment: the platform's, its identity, and its own variables."""
    return {
        **platform_env(SETTINGS, 7860),
        "SPACE_ID": "ada/demo",
        "SPACE_HOST": "ada-demo.localhost",
        "GRADIO_ROOT_PATH": "/ada/demo",
        **own,
    }


def test_identity_and_plain_variables_and_secrets_fit() -> None:
    assert env_fits(SETTINGS, 7860, env(), GRADIO)
    assert env_fits(SETTINGS, 7860, env(OPENAI_API_KEY="sk-x", GREETING="hi"), GRADIO)


def test_variables_libraries_read_at_import_start_fresh() -> None:
    for key in (
        "HF_HUB_OFFLINE",
        "HUGGING_FACE_HUB_TOKEN",
        "GRADIO_TEMP_DIR",
        "TRANSFORMERS_CACHE",
        "PYTHONHASHSEED",
        "https_proxy",
        "SSL_CERT_FILE",
        "HOME",
    ):
        assert not env_fits(SETTINGS, 7860, env(**{key: "x"}), GRADIO), key


def test_a_changed_platform_variable_starts_fresh() -> None:
    assert not env_fits(SETTINGS, 7860, env(GRADIO_ANALYTICS_ENABLED="True"), GRADIO)
    assert not env_fits(SETTINGS, 7861, env(), GRADIO)  # another port: another pool


def test_an_app_importing_other_libraries_first_fits_only_without_variables() -> None:
    ahead = ["sklearn.ensemble", "gradio"]
    assert env_fits(SETTINGS, 7860, env(), ahead)
    assert not env_fits(SETTINGS, 7860, env(OPENAI_API_KEY="sk-x"), ahead)


def test_the_fit_changes_with_what_a_running_container_cannot() -> None:
    base = fit_digest(SETTINGS, 7860, 2048, None, True)
    assert base == fit_digest(SETTINGS, 7860, 2048, None, True)
    assert base != fit_digest(SETTINGS, 8501, 2048, None, True)
    assert base != fit_digest(SETTINGS, 7860, 512, None, True)
    assert base != fit_digest(SETTINGS, 7860, 2048, "runsc", True)
    assert base != fit_digest(SETTINGS, 7860, 2048, None, False)
    moved = Settings(url="https://spaces.example.org")  # the apps' HF_ENDPOINT changes
    assert base != fit_digest(moved, 7860, 2048, None, True)
