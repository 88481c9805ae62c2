"""Pure pieces of the console: CSRF derivation, redirect safety, stage badges (no server)."""

from __future__ import annotations

from spaceport.api.routes.console_auth import safe_next
from spaceport.api.routes.console_views import STAGE_GROUPS, STAGE_LABELS, color
from spaceport.auth.sessions import csrf_for, csrf_matches
from spaceport.stages import Stage


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


def test_front_matter_colors_fall_back() -> None:
    assert color("Red", "indigo") == "#ef4444"
    assert color("chartreuse", "indigo") == color(None, "indigo") == "#6366f1"
