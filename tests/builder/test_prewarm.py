"""Which apps may get a standby that imported their SDK ahead of them (builder's prewarm.py):
only those whose code before the SDK import cannot change what that import does, with the
libraries of their leading imports imported ahead too, in their order."""

from __future__ import annotations

from pathlib import Path

import pytest

from spaceport.front_matter import load_config
from spaceport_builder.prewarm import GRADIO, STREAMLIT, modules
from tests.builder.helpers import variant


def gradio_app(tmp: Path, code: str) -> list[str]:
    repo = variant(tmp, "gradio-hello", **{"app.py": code, "helpers.py": "X = 1\n"})
    return modules(load_config(repo), repo)


@pytest.mark.parametrize(
    "code",
    [
        'import gradio as gr\ngr.Interface(lambda x: x, "text", "text").launch()\n',
        '"""A demo."""\nfrom __future__ import annotations\nimport os, json\nimport gradio\n',
        "import sys\nfrom pathlib import Path\nfrom gradio import Blocks\n",
    ],
)
def test_sdk_import_first_gets_a_standby(tmp_path: Path, code: str) -> None:
    assert gradio_app(tmp_path, code) == list(GRADIO)


@pytest.mark.parametrize(
    "code",
    [
        # Code before the import may change what it does.
        'import os\nos.environ["GRADIO_TEMP_DIR"] = "/data/tmp"\nimport gradio\n',
        # Hugging Face's ZeroGPU package must come before torch and gradio.
        "import spaces\nimport gradio\n",
        "import numpy as np\nimport spaces\nimport gradio as gr\n",
        # A library imported ahead, but code before the SDK's import.
        'import numpy as np\nnp.seterr(all="raise")\nimport gradio as gr\n',
        # The app's own module (it holds code) before the SDK.
        "import helpers\nimport gradio as gr\n",
        "from . import helpers\nimport gradio as gr\n",
        # No SDK import at the top level, or not Python at all.
        "def main():\n    import gradio\n",
        "import gradio as gr\n  oops(\n",
    ],
)
def test_anything_before_the_sdk_import_means_no_standby(tmp_path: Path, code: str) -> None:
    assert gradio_app(tmp_path, code) == []


@pytest.mark.parametrize(
    ("code", "ahead"),
    [
        # torch first, as most ML demos: both, in the app's order.
        ("import torch\nimport gradio as gr\n", ["torch", "gradio"]),
        (
            "import os\nimport numpy as np\nfrom transformers import pipeline\nimport gradio\n"
            "import pandas as pd\nx = 1\nimport scipy\n",
            ["numpy", "transformers", "gradio", "pandas"],  # the leading block's only
        ),
        ("import gradio as gr\nimport helpers\nimport torch\n", ["gradio"]),  # stops at its own
        ("import huggingface_hub.utils, gradio\n", ["huggingface_hub.utils", "gradio"]),
    ],
)
def test_libraries_of_the_leading_imports_are_imported_ahead_in_order(
    tmp_path: Path, code: str, ahead: list[str]
) -> None:
    assert gradio_app(tmp_path, code) == ahead


def test_streamlit_runs_the_app_later_itself_and_other_sdks_get_none(tmp_path: Path) -> None:
    from tests.conftest import EXAMPLES

    streamlit = EXAMPLES / "streamlit-hello"
    assert modules(load_config(streamlit), streamlit) == list(STREAMLIT)
    for name in ("static-site", "docker-fastapi"):
        assert modules(load_config(EXAMPLES / name), EXAMPLES / name) == []
