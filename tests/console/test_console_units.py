"""Pure pieces of the console: CSRF derivation, redirect safety, stage badges (no server)."""

from __future__ import annotations

from spaceport.api.routes.console_auth import safe_next
from spaceport.auth.sessions import csrf_for, csrf_matches
from spaceport.services.summaries import STAGE_GROUPS, STAGE_LABELS, color, initial
from spaceport.stages import LABELS, Stage, label


def test_csrf_token_is_bound_to_the_session() -> None:
    a, b = csrf_for("sp_session_a"), csrf_for("sp_session_b")
    assert a != b and len(a) == 64
    assert csrf_matches("sp_session_a", a)
    assert not csrf_matches("sp_session_a", b)
    assert not csrf_matches("sp_session_a", None)


def test_sign_in_redirects_stay_on_this_site() -> None:
    assert safe_next("/spaces/a/b?x=1") == "/spaces/a/b?x=1"
    for evil in ("//evil.example/", "https://evil.example/", "/\\evil.example", "", None):
        assert safe_next(evil) == "/"


def test_every_stage_has_a_badge() -> None:
    assert set(STAGE_GROUPS) == set(Stage) == set(STAGE_LABELS)
    assert set(STAGE_GROUPS.values()) <= {"ok", "busy", "error", "idle"}


def test_stages_read_as_words_everywhere() -> None:
    """One mapping (stages.py) that badges, the runtime card and the CLI share: no stage is
    shown as an identifier that wraps mid-word (RUNNING_APP_STARTING)."""
    assert STAGE_LABELS is LABELS
    assert all("_" not in text for text in LABELS.values())
    assert label("RUNNING_APP_STARTING") == "Running · starting"
    assert label("SOMETHING_NEW") == "Something new"


def test_space_avatar_initial_skips_leading_symbols() -> None:
    assert initial("zebra lab") == "Z"
    assert initial("🧪 Lab") == "L"
    assert initial("***") == "S"


def test_front_matter_colors_fall_back() -> None:
    assert color("Red", "indigo") == "#ef4444"
    assert color("chartreuse", "indigo") == color(None, "indigo") == "#6366f1"
