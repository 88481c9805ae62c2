"""What a Space's README says about being embedded, turned into headers and snippets.

- `disable_embedding: true`: the app refuses to be framed anywhere
  (`Content-Security-Policy: frame-ancestors 'none'` and `X-Frame-Options: DENY`).
- `custom_headers`: the cross-origin isolation headers Hugging Face allows (COEP, COOP, CORP),
  with the values the standards define; anything else is reported, never applied, so an app
  cannot set e.g. `Set-Cookie` or `Strict-Transport-Security` on the platform's hosts.
- Snippets: `<iframe>` for every SDK (`?embed=true` for Streamlit, as on Streamlit's hosting),
  and Gradio's `<gradio-app>` web component, whose script the platform serves on the app's
  own origin at `{app}/.spaceport/gradio.js` (no internet needed).
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

from spaceport.proxy.base import PLATFORM_PATH, Headers, headers

ALLOWED_CUSTOM_HEADERS: dict[str, frozenset[str]] = {
    "cross-origin-embedder-policy": frozenset({"unsafe-none", "require-corp", "credentialless"}),
    "cross-origin-opener-policy": frozenset(
        {"unsafe-none", "same-origin-allow-popups", "same-origin", "noopener-allow-popups"}
    ),
    "cross-origin-resource-policy": frozenset({"same-site", "same-origin", "cross-origin"}),
}
NO_FRAMING: dict[str, str] = {
    "Content-Security-Policy": "frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
}
GRADIO_SCRIPT = PLATFORM_PATH + "/gradio.js"


def _truthy(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def custom_header_problems(card: Mapping[str, Any]) -> list[str]:
    """Why `custom_headers` in the README front matter cannot be applied, one line each."""
    raw = card.get("custom_headers")
    if raw is None:
        return []
    if not isinstance(raw, Mapping):
        return ["README.md front matter: 'custom_headers' must be a mapping of header: value"]
    problems = []
    allowed = ", ".join(sorted(ALLOWED_CUSTOM_HEADERS))
    for name, value in raw.items():
        values = ALLOWED_CUSTOM_HEADERS.get(str(name).lower())
        if values is None:
            problems.append(
                f"README.md front matter: custom_headers: {name!r} is not allowed "
                f"(allowed: {allowed})"
            )
        elif str(value).strip().lower() not in values:
            problems.append(
                f"README.md front matter: custom_headers: {name}: {value!r} must be one of "
                f"{', '.join(sorted(values))}"
            )
    return problems


def response_headers(card: Mapping[str, Any] | None) -> Headers:
    """Headers the proxy sets on every response of the Space's app, from its README."""
    card = card or {}
    out: dict[str, str] = {}
    raw = card.get("custom_headers")
    if isinstance(raw, Mapping):
        for name, value in raw.items():
            canonical = str(name).lower()
            clean = str(value).strip().lower()
            if clean in ALLOWED_CUSTOM_HEADERS.get(canonical, frozenset()):
                out["-".join(p.capitalize() for p in canonical.split("-"))] = clean
    if _truthy(card.get("disable_embedding")):
        out.update(NO_FRAMING)
    return headers(out)


def embeddable(card: Mapping[str, Any] | None) -> bool:
    return not _truthy((card or {}).get("disable_embedding"))


def snippets(app_url: str, sdk: str | None, card: Mapping[str, Any] | None) -> dict[str, Any]:
    """The embed snippets of a Space (the `embed` API and the Space page show these)."""
    url = app_url if app_url.endswith("/") else app_url + "/"
    out: dict[str, Any] = {"app_url": url, "embeddable": embeddable(card)}
    if not out["embeddable"]:
        out["reason"] = "The Space's README sets disable_embedding: true."
        return out
    frame_src = url + "?embed=true" if sdk == "streamlit" else url
    out["iframe"] = (
        f'<iframe src="{html.escape(frame_src)}" frameborder="0" width="850" height="450"></iframe>'
    )
    if sdk == "gradio":
        script = url + GRADIO_SCRIPT.lstrip("/")
        out["script_url"] = script
        out["web_component"] = (
            f'<script type="module" src="{html.escape(script)}"></script>\n'
            f'<gradio-app src="{html.escape(url)}"></gradio-app>'
        )
    return out
