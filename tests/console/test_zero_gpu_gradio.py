"""A Gradio app written for Hugging Face's ZeroGPU, unchanged, on a shared-GPU flavor (FAKE
pool device: tests/runtime/fake_gpus.py): two visitors click at once, one call holds the GPU
and the other's page says it waits for it (Gradio's own toast), then both get their answer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Node, need, unique
from tests.console.conftest import APPS, shot
from tests.runtime.fake_gpus import SHARED_UUID

pytestmark = pytest.mark.slow


def test_visitors_see_their_place_in_the_gpu_queue(
    node: Node, browser: Any, artifacts: Path
) -> None:
    need(SHARED_UUID in node.settings.zero_gpu_pool, "the fake GPU inventory (needs root)")
    space_id = node.create_space(unique("gradio-zero"), hardware="zero-a10g")
    assert node.push(APPS / "gradio_zero", space_id).returncode == 0
    node.wait_stage(space_id, {"RUNNING"}, timeout=300)
    url = node.app_url(space_id)
    pages = []
    for word in ("first", "second"):
        context = browser.new_context(viewport={"width": 1100, "height": 800})
        context.set_default_timeout(60_000)
        page = context.new_page()
        page.goto(url)
        page.get_by_label("Prompt").fill(word)
        pages.append(page)
    try:
        pages[0].get_by_role("button", name="Run").click()
        pages[0].wait_for_timeout(500)  # the first call holds the GPU
        pages[1].get_by_role("button", name="Run").click()
        pages[1].get_by_text("Waiting for a GPU").first.wait_for()
        shot(pages[1], artifacts, "zero-gpu-waiting", full=False)
        for page, word in zip(pages, ("first", "second"), strict=True):
            answer = page.get_by_label("Answer")
            page.wait_for_function(
                "el => el.value.length > 0", arg=answer.element_handle(), timeout=60_000
            )
            assert answer.input_value() == f"{word} ran on {SHARED_UUID}"
    finally:
        for page in pages:
            page.context.close()
