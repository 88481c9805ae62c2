"""`GET /api/v1/spaces/{owner}/{name}/embed`: how to put a Space's app in another web page.

The same snippets the Space page shows: an `<iframe>` for every SDK (`?embed=true` for
Streamlit), and for Gradio the `<gradio-app>` web component with its script served from the
app's own origin. A Space whose README sets `disable_embedding: true` says so instead.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from spaceport.api.routes.spaces import readable_space
from spaceport.db.models import Space
from spaceport.proxy import embedding
from spaceport.settings import get_settings

router = APIRouter(tags=["native"])


@router.get("/api/v1/spaces/{owner}/{name}/embed")
def embed_snippets(space: Space = Depends(readable_space)) -> dict[str, Any]:
    settings = get_settings()
    app_url = settings.app_url(space.owner, space.name)
    return {
        "id": space.space_id,
        "sdk": space.sdk,
        **embedding.snippets(app_url, space.sdk, space.card_data),
    }
