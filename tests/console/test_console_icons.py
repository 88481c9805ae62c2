"""Icons and words the console draws itself: no emoji anywhere in its buttons, badges, chips
and headings (many servers and minimal desktops have no emoji font and draw empty boxes), SVG
icons that paint, stage labels instead of stage names, and a Space's README emoji shown only
where a font draws it (its initial otherwise). Real Chromium, real node."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CHROMIUM_ARGS, EXAMPLES, Node, unique
from tests.console.conftest import CHROMIUM, CONSOLE, shot, sign_in

# Text nodes the console wrote (not a Space's title, description or avatar, which are the
# user's: `data-user-content`), with every emoji codepoint found in them.
EMOJI_IN_CONSOLE_TEXT = r"""() => {
  const EMOJI = /[\p{Extended_Pictographic}\p{Emoji_Presentation}]/gu;
  const SKIP = '[data-user-content], script, style, iframe, pre, code, .logview, textarea';
  const found = [];
  const walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walk.nextNode(); n; n = walk.nextNode()) {
    if (n.parentElement.closest(SKIP)) continue;
    const hits = n.textContent.match(EMOJI);
    if (hits) found.push(`${n.parentElement.outerHTML.slice(0, 120)}: ${hits.join(' ')}`);
  }
  for (const el of document.querySelectorAll('[title], [aria-label], [placeholder]')) {
    for (const attr of ['title', 'aria-label', 'placeholder']) {
      const hits = (el.getAttribute(attr) || '').match(EMOJI);
      if (hits && !el.closest('[data-user-content]')) found.push(`${attr}: ${hits.join(' ')}`);
    }
  }
  const title = document.title.match(EMOJI);
  if (title) found.push(`<title>: ${title.join(' ')}`);
  return found;
}"""

# Each laid-out `svg.icon`, drawn on its own into a canvas: [name, width, opaque pixels].
PAINTED_ICONS = r"""async () => {
  const out = [];
  for (const el of document.querySelectorAll('svg.icon')) {
    const box = el.getBoundingClientRect();
    if (!box.width) continue;  // in a hidden tab or button
    const copy = el.cloneNode(true);
    copy.setAttribute('width', '48');
    copy.setAttribute('height', '48');
    copy.style.color = '#000';
    const img = new Image();
    img.src = 'data:image/svg+xml;charset=utf-8,'
      + encodeURIComponent(new XMLSerializer().serializeToString(copy));
    await img.decode();
    const canvas = document.createElement('canvas');
    canvas.width = canvas.height = 48;
    const g = canvas.getContext('2d');
    g.drawImage(img, 0, 0, 48, 48);
    const px = g.getImageData(0, 0, 48, 48).data;
    let painted = 0;
    for (let i = 3; i < px.length; i += 4) if (px[i] > 0) painted += 1;
    out.push([el.dataset.icon, box.width, painted]);
  }
  return out;
}"""


def assert_no_emoji_and_icons_paint(page: Any, where: str) -> list[str]:
    found = page.evaluate(EMOJI_IN_CONSOLE_TEXT)
    assert found == [], f"emoji on {where}: {found}"
    icons = page.evaluate(PAINTED_ICONS)
    blank = [(name, width, painted) for name, width, painted in icons if painted < 20]
    assert not blank, f"icons that draw nothing on {where}: {blank}"
    return [name for name, _, _ in icons]


@pytest.fixture(scope="module")
def labelled(node: Node, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A static Space whose README gives an emoji no text font has, and the title Zebra Lab."""
    src = tmp_path_factory.mktemp("zebra") / "site"
    shutil.copytree(EXAMPLES / "static-site", src)
    readme = (src / "README.md").read_text()
    readme = readme.replace("title: Static Site", "title: Zebra Lab").replace("🌐", "🧪")
    (src / "README.md").write_text(readme)
    space_id = node.create_space(unique("zebra"), sdk="static")
    assert node.push(src, space_id).returncode == 0
    node.wait_stage(space_id, {"RUNNING"}, timeout=240)
    return space_id


def test_console_pages_use_svg_icons_and_no_emoji(
    node: Node, browser: Any, admin_page: Any, labelled: str, artifacts: Path
) -> None:
    bare = node.create_space(unique("no-emoji"), private=True)  # private: its lock chip too
    page = admin_page
    seen: set[str] = set()
    for path in (
        "/",
        "/?q=no-such-space-anywhere",
        "/new",
        f"/spaces/{bare}",
        f"/spaces/{bare}#files",
        f"/spaces/{bare}#settings",
        f"/spaces/{labelled}",
        "/settings/tokens",
        "/admin/users",
        "/admin",
        "/spaces/admin/no-such-space",
    ):
        page.goto(f"{CONSOLE}{path}")
        page.wait_for_load_state("load")
        seen.update(assert_no_emoji_and_icons_paint(page, path))
    # The buttons and chips a person acts on carry icons, not characters.
    page.goto(f"{CONSOLE}/spaces/{bare}")
    for selector in ("[data-action=restart]", "#btn-pause", "#btn-stop", "#open-duplicate"):
        assert page.locator(f"{selector} svg.icon").count() == 1, selector
    page.click("#open-duplicate")
    assert_no_emoji_and_icons_paint(page, "the duplicate dialog")
    page.keyboard.press("Escape")
    shot(page, artifacts, "icons-space-page", full=False)
    assert {"restart", "factory", "pause", "stop", "duplicate", "chip", "logo", "plus"} <= seen
    assert {"window", "chart", "box", "file", "lock", "gpu", "server"} <= seen

    visitor = browser.new_context()
    try:
        login = visitor.new_page()
        login.goto(f"{CONSOLE}/login")
        assert_no_emoji_and_icons_paint(login, "/login")
    finally:
        visitor.close()


def test_runtime_card_shows_the_stage_label(node: Node, admin_page: Any) -> None:
    space_id = node.create_space(unique("label"))
    page = admin_page
    page.goto(f"{CONSOLE}/spaces/{space_id}")
    stage = page.locator("#runtime [data-k='stage']")
    assert stage.inner_text().strip() == "No app file"
    assert stage.get_attribute("title") == "NO_APP_FILE"  # Hugging Face's name, on hover
    assert page.inner_text("#stage-badge").strip().lower() == "no app file"
    assert page.inner_text("#status-title").strip() == "No app file"
    lines = page.evaluate(
        "() => { const d = document.querySelector(\"#runtime [data-k='stage']\");"
        " return Math.round(d.getBoundingClientRect().height"
        " / parseFloat(getComputedStyle(d).lineHeight)); }"
    )
    assert lines == 1


def test_space_emoji_shows_where_a_font_draws_it(admin_page: Any, labelled: str) -> None:
    page = admin_page
    page.goto(f"{CONSOLE}/spaces/{labelled}")
    tile = page.locator(".hero .space-avatar")
    tile.and_(page.locator(".has-emoji")).wait_for()
    assert tile.inner_text().strip() == "🧪"  # this machine has Noto Color Emoji
    page.goto(f"{CONSOLE}/?q={labelled.split('/')[1]}")
    card = page.locator(f".card[data-space='{labelled}'] .space-avatar")
    assert card.inner_text().strip() == "🧪"


@pytest.fixture()
def no_emoji_font(browser: Any, tmp_path: Path) -> Iterator[Any]:
    """Chromium on a machine with text fonts only (fontconfig sees DejaVu, no emoji font)."""
    fonts = tmp_path / "fonts.conf"
    fonts.write_text(
        '<?xml version="1.0"?>\n<!DOCTYPE fontconfig SYSTEM "fonts.dtd">\n<fontconfig>\n'
        "  <dir>/usr/share/fonts/truetype/dejavu</dir>\n"
        f"  <cachedir>{tmp_path / 'cache'}</cachedir>\n</fontconfig>\n"
    )
    bare = browser.browser_type.launch(
        executable_path=CHROMIUM, args=CHROMIUM_ARGS, env={"FONTCONFIG_FILE": str(fonts)}
    )
    try:
        yield bare
    finally:
        bare.close()


def test_space_avatar_is_its_initial_without_an_emoji_font(
    node: Node, no_emoji_font: Any, labelled: str, artifacts: Path
) -> None:
    page = sign_in(no_emoji_font, node.token)
    try:
        page.goto(f"{CONSOLE}/spaces/{labelled}")
        tile = page.locator(".hero .space-avatar")
        assert tile.inner_text().strip() == "Z"  # Zebra Lab, on its colors: never a box
        assert "has-emoji" not in (tile.get_attribute("class") or "")
        assert (page.locator("#status-box .space-avatar").text_content() or "").strip() == "Z"
        shot(page, artifacts, "no-emoji-font-space", full=False)
        page.goto(f"{CONSOLE}/?q={labelled.split('/')[1]}")
        card = page.locator(f".card[data-space='{labelled}'] .space-avatar")
        assert card.inner_text().strip() == "Z"
        shot(page, artifacts, "no-emoji-font-spaces", full=False)
    finally:
        page.context.close()
