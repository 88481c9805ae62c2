"""The environment an app sees: what Hugging Face sets, plus the owner's variables and secrets."""

from __future__ import annotations

from sqlalchemy.orm import Session

from spaceport.auth.crypto import decrypt
from spaceport.db.models import Space
from spaceport.settings import Settings


def app_port(space: Space) -> int:
    card = space.card_data or {}
    if space.sdk == "streamlit":
        return int(card.get("app_port") or 8501)
    return int(card.get("app_port") or 7860)


def app_env(
    session: Session, settings: Settings, space: Space, commit: str | None
) -> dict[str, str]:
    port = app_port(space)
    env = {
        # Hugging Face's variables, so apps written for it run unchanged.
        "SYSTEM": "spaces",
        "SPACE_ID": space.space_id,
        "SPACE_AUTHOR_NAME": space.owner,
        "SPACE_REPO_NAME": space.name,
        "SPACE_TITLE": str((space.card_data or {}).get("title") or space.name),
        "SPACE_HOST": settings.app_host(space.owner, space.name),
        "SPACE_CREATOR_USER_ID": space.owner,
        "PORT": str(port),
        "GRADIO_SERVER_NAME": "0.0.0.0",
        "GRADIO_SERVER_PORT": str(port),
        "GRADIO_ANALYTICS_ENABLED": "False",
        "STREAMLIT_SERVER_ADDRESS": "0.0.0.0",
        "STREAMLIT_SERVER_PORT": str(port),
        "STREAMLIT_SERVER_HEADLESS": "true",
        "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_ENDPOINT": settings.url,
    }
    prefix = settings.app_path(space.owner, space.name).rstrip("/")
    if prefix:  # path mode: the app lives under /{owner}/{name}/ (see proxy.sync.route_for)
        env["GRADIO_ROOT_PATH"] = prefix
        env["STREAMLIT_SERVER_BASE_URL_PATH"] = prefix.lstrip("/")
    if commit:
        env["SPACE_COMMIT_SHA"] = commit
    for var in space.variables:
        if var.is_secret and var.encrypted_value is not None:
            env[var.key] = decrypt(settings, var.encrypted_value)
        elif var.value is not None:
            env[var.key] = var.value
    return env
