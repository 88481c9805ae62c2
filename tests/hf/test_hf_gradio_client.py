"""`gradio_client.Client("owner/name")` finds a Spaceport Space through HF_ENDPOINT.

The Space is uploaded with huggingface_hub (so this also proves an API commit builds and runs
an app), then a separate Python process, configured only by HF_ENDPOINT and HF_TOKEN, loads it
by id: gradio_client reads `host` from the Space info and the stage from the runtime.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from huggingface_hub import HfApi

from tests.conftest import EXAMPLES, Node, hosts_entries, unique
from tests.hf.conftest import client_env, wait_running

pytestmark = pytest.mark.slow

PREDICT = """
import sys
from gradio_client import Client
token = sys.argv[2] if len(sys.argv) > 2 else None
try:
    client = Client(sys.argv[1], token=token, verbose=False)
except ValueError as exc:
    print("ERROR", exc)
    raise SystemExit(3)
print(client.predict("World", api_name="/greet"))
"""


def predict(node: Node, repo_id: str, tmp_path: Path, token: str | None) -> str:
    args = [sys.executable, "-c", PREDICT, repo_id] + ([token] if token else [])
    proc = subprocess.run(
        args,
        env=client_env(node, None, tmp_path / "hf-home"),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return (proc.stdout + proc.stderr).strip()


@pytest.fixture(scope="module")
def gradio_space(node: Node, api: HfApi) -> Iterator[str]:
    """A running Gradio Space, uploaded with huggingface_hub (an API commit builds it)."""
    repo_id = f"admin/{unique('gc')}"
    api.create_repo(repo_id, repo_type="space", space_sdk="gradio")
    api.upload_folder(folder_path=EXAMPLES / "gradio-hello", repo_id=repo_id, repo_type="space")
    wait_running(api, repo_id)
    with hosts_entries(node.app_host(repo_id).split(":")[0]):
        yield repo_id
    api.pause_space(repo_id)  # frees its memory for the tests that follow


def test_gradio_client_loads_space_by_id(node: Node, gradio_space: str, tmp_path: Path) -> None:
    assert predict(node, gradio_space, tmp_path, None).endswith("Hello, World!")


def test_private_space_needs_the_token(
    node: Node, api: HfApi, gradio_space: str, tmp_path: Path
) -> None:
    """The Space info is found only with the owner's token; gradio_client then sends it to the
    app host as x-hf-authorization, which the app-host access check must accept."""
    api.update_repo_settings(gradio_space, repo_type="space", private=True)
    try:
        anonymous = predict(node, gradio_space, tmp_path, None)
        assert "RepositoryNotFoundError" in anonymous, anonymous
        assert predict(node, gradio_space, tmp_path, node.token).endswith("Hello, World!")
    finally:
        api.update_repo_settings(gradio_space, repo_type="space", private=False)
