"""docs/configuration.md is the rendered Settings model: regenerate it when settings change."""

from __future__ import annotations

from pathlib import Path

from spaceport.config_reference import render


def test_configuration_doc_is_current() -> None:
    doc = Path(__file__).parents[1] / "docs" / "configuration.md"
    assert doc.read_text() == render(), (
        "docs/configuration.md is stale: run `python -m spaceport.config_reference "
        "> docs/configuration.md`"
    )
