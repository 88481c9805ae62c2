"""The environment an app sees: what Hugging Face sets, plus the owner's variables and secrets.

Apps call other Spaces as they do on Hugging Face (gradio_client, huggingface_hub): through
`HF_ENDPOINT` and each Space's host. Both must lead back to this node's public entry point from
inside a container, where `localhost` is the container itself and `*.localhost` resolves to
nothing: `node_hosts` names what the container maps to its bridge's gateway (the firewall
opens the entry point there, engine/network_policy.py), and `app_endpoint` is the console's
URL under a name that can be mapped.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlparse

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from spaceport.auth.crypto import decrypt
from spaceport.db.models import Space
from spaceport.settings import Settings

ENDPOINT_ALIAS = "host.docker.internal"
"""The console's host name inside apps when the public one is loopback (`localhost` must stay
the container's own: Gradio and Streamlit check themselves through it)."""


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _mapped(settings: Settings, host: str) -> bool:
    """Whether apps resolve `host` to the node through their own hosts file."""
    if settings.app_node_hosts == "off" or not host:
        return False
    try:
        ipaddress.ip_address(host)
        return False  # an address needs no name
    except ValueError:
        pass
    return settings.app_node_hosts == "on" or host == ENDPOINT_ALIAS or host.endswith(".localhost")


def app_endpoint(settings: Settings) -> str:
    """HF_ENDPOINT inside apps: the public URL, its host renamed when it is loopback."""
    parsed = urlparse(settings.url.rstrip("/"))
    host = parsed.hostname or ""
    if settings.app_node_hosts == "off" or not _loopback(host):
        return settings.url.rstrip("/")
    port = f":{parsed.port}" if parsed.port else ""
    return parsed._replace(netloc=f"{ENDPOINT_ALIAS}{port}").geturl()


def node_hosts(session: Session, settings: Settings, space: Space | None) -> list[str]:
    """The names `space`'s app resolves to the node's entry point: the console's (as in
    HF_ENDPOINT), the apps host in path mode; in subdomain mode the hosts of the Spaces it may
    find without a token (public ones) and its owner's own, never others' private names.
    A Space created later resolves in an app from that app's next start. Without a Space (a
    container of the node pool, bound to none yet): the public ones only."""
    names = [urlparse(app_endpoint(settings)).hostname or ""]
    if settings.routing == "path":
        names.append(settings.app_host("", ""))  # the one apps host
    else:
        visible = select(Space.owner, Space.name).where(
            Space.private.is_(False)
            if space is None
            else or_(Space.private.is_(False), Space.owner == space.owner)
        )
        names += [settings.app_host(owner, name) for owner, name in session.execute(visible)]
    return sorted({n for n in names if _mapped(settings, n)})


def app_port(space: Space) -> int:
    card = space.card_data or {}
    if space.sdk == "streamlit":
        return int(card.get("app_port") or 8501)
    return int(card.get("app_port") or 7860)


def platform_env(settings: Settings, port: int) -> dict[str, str]:
    """What every Space listening on `port` gets alike: Hugging Face's constants and the SDKs'
    server settings (a node pool's container imports its SDK with this; node_pool.py)."""
    return {
        # Hugging Face's variables, so apps written for it run unchanged.
        "SYSTEM": "spaces",
        "PORT": str(port),
        "GRADIO_SERVER_NAME": "0.0.0.0",
        "GRADIO_SERVER_PORT": str(port),
        "GRADIO_ANALYTICS_ENABLED": "False",
        "STREAMLIT_SERVER_ADDRESS": "0.0.0.0",
        "STREAMLIT_SERVER_PORT": str(port),
        "STREAMLIT_SERVER_HEADLESS": "true",
        "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_ENDPOINT": app_endpoint(settings),
    }


IDENTITY_KEYS = frozenset(
    {
        "SPACE_ID",
        "SPACE_AUTHOR_NAME",
        "SPACE_REPO_NAME",
        "SPACE_TITLE",
        "SPACE_HOST",
        "SPACE_CREATOR_USER_ID",
        "SPACE_COMMIT_SHA",
        "STREAMLIT_BROWSER_SERVER_ADDRESS",
        "GRADIO_ROOT_PATH",
        "STREAMLIT_SERVER_BASE_URL_PATH",
    }
)
"""The platform's variables that differ per Space (who it is, where it lives), all read by
Gradio and Streamlit when the app starts, none when they are imported."""


def app_env(
    session: Session, settings: Settings, space: Space, commit: str | None
) -> dict[str, str]:
    port = app_port(space)
    host = settings.app_host(space.owner, space.name)
    env = {
        **platform_env(settings, port),
        "SPACE_ID": space.space_id,
        "SPACE_AUTHOR_NAME": space.owner,
        "SPACE_REPO_NAME": space.name,
        "SPACE_TITLE": str((space.card_data or {}).get("title") or space.name),
        "SPACE_HOST": host,
        "SPACE_CREATOR_USER_ID": space.owner,
        # Where visitors point their browsers. Without it a headless Streamlit asks
        # checkip.amazonaws.com for the machine's address before it serves its first request:
        # 20 s where the apps' network resolves no outside name (docs/benchmarks.md).
        "STREAMLIT_BROWSER_SERVER_ADDRESS": host,
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
