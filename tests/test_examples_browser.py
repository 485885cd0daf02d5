"""The three example newsletters in a real headless Chromium, the way readers' clients show them.

- weekly-links: a link-heavy weekly with code blocks and a wide table;
- campus-bulletin: events and images with captions;
- bilingual-rtl: Arabic (right-to-left) with Japanese items.

Each is built in memory and opened with every request but the page itself
refused, which is what a mail client with images off does. Without Chromium or
playwright these tests skip and say why, except under CI=true, where they fail.
The measurements are made here, in the page, independently of
``dispatch screenshot``'s own layout report.
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dispatch_mail.publish.build import build_issue
from tests.helpers.plaintext import code_blocks

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = {
    "weekly-links": ROOT / "examples/weekly-links/issues/issue-212",
    "campus-bulletin": ROOT / "examples/campus-bulletin/issues/2027-01-11",
    "bilingual-rtl": ROOT / "examples/bilingual-rtl/issues/2027-05-issue-14",
}
PAGE_URL = "http://examples.invalid/email.html"  # .invalid never resolves; the route answers it
PHONE = 320  # the narrowest phone still in use, CSS px
MIN_ALT_FONT_PX = 14
MIN_CONTRAST = 4.5  # WCAG AA for body text


def browser_missing(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true, so the browser tests must run, not skip: {reason}")
    pytest.skip(f"no browser: {reason}")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from dispatch_mail.browser.chromium import browser_unavailable_reason, find_chromium

    reason = browser_unavailable_reason()
    if reason:
        browser_missing(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=find_chromium(),
            args=["--no-sandbox", "--host-resolver-rules=MAP * ~NOTFOUND"],
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module")
def built() -> dict[str, str]:
    # Rendered in memory: nothing is written into the repository.
    return {name: build_issue(path, write=False).rendered.html for name, path in EXAMPLES.items()}


class Opened:
    """A page holding one built email, with every other request (images above all) refused."""

    def __init__(self, page: Any, refused: list[tuple[str, str]]) -> None:
        self.page = page
        self.refused = refused  # (resource type, url) of each request the route stopped

    def evaluate(self, script: str, arg: Any = None) -> Any:
        return self.page.evaluate(script, arg)


@pytest.fixture
def open_email(browser) -> Iterator[Any]:
    contexts: list[Any] = []

    def _open(html: str, width: int = 600, scheme: str = "light") -> Opened:
        context = browser.new_context(
            viewport={"width": width, "height": 900}, color_scheme=scheme, device_scale_factor=1
        )
        contexts.append(context)
        refused: list[tuple[str, str]] = []
        body = html.encode("utf-8")

        def route(request_route: Any) -> None:
            request = request_route.request
            if request.url == PAGE_URL:
                request_route.fulfill(
                    status=200, content_type="text/html; charset=utf-8", body=body
                )
            else:
                refused.append((request.resource_type, request.url))
                request_route.abort("blockedbyclient")

        context.route("**/*", route)
        page = context.new_page()
        page.goto(PAGE_URL, wait_until="load")
        return Opened(page, refused)

    yield _open
    for context in contexts:
        context.close()


# --------------------------------------------------------------------------- direction
TEXT_NODES_JS = """
() => {
  const out = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const text = node.nodeValue.trim();
    if (!text) continue;
    const el = node.parentElement;
    const tag = el.tagName.toLowerCase();
    if (tag === 'style' || tag === 'script') continue;
    const own = el.closest('[lang]');
    const style = getComputedStyle(el);
    const block = (() => {  // the block that lays the text out: its alignment is what shows
      for (let b = el; b; b = b.parentElement) {
        const d = getComputedStyle(b).display;
        if (d !== 'inline' && d !== 'contents') return b;
      }
      return document.body;
    })();
    const bstyle = getComputedStyle(block);
    const range = document.createRange();
    range.selectNodeContents(node);
    const rects = [...range.getClientRects()].filter(r => r.width > 0);
    out.push({
      text: text.slice(0, 80),
      lang: own ? own.getAttribute('lang') : '',
      tag,
      direction: style.direction,
      // an inline element with its own direction (<bdi>, <span dir>) isolates a run
      isolate: (() => {
        const iso = el.closest('bdi, [dir]');
        if (!iso || getComputedStyle(iso).display !== 'inline') return null;
        return iso.getAttribute('dir') || 'auto';
      })(),
      block_tag: block.tagName.toLowerCase(),
      block_direction: bstyle.direction,
      text_align: bstyle.textAlign,
      body_text: !!block.closest('.dm-text')
        && !block.closest('.footer, .stats, pre, table.md-table'),
      visible: rects.length > 0 && style.visibility !== 'hidden',
    });
  }
  return out;
}
"""


def effective_alignment(text_align: str, direction: str) -> str:
    """Where a line of text sits: 'start' and 'end' resolved against the block's direction."""
    if text_align in ("start", "-webkit-auto", "auto"):
        return "right" if direction == "rtl" else "left"
    if text_align == "end":
        return "left" if direction == "rtl" else "right"
    if text_align in ("-webkit-left", "-webkit-right", "-webkit-center"):
        return text_align.removeprefix("-webkit-")
    return text_align


def has_arabic(text: str) -> bool:
    return any(unicodedata.bidirectional(ch) in ("AL", "R") for ch in text)


def first_strong(text: str) -> str | None:
    """The direction a dir=auto isolate takes: its first strong character's."""
    for ch in text:
        kind = unicodedata.bidirectional(ch)
        if kind == "L":
            return "ltr"
        if kind in ("R", "AL"):
            return "rtl"
    return None


def isolate_direction(node: dict) -> str:
    """An isolate (<bdi>, <span dir>) of a Latin name or a number inside Arabic is its own
    direction on purpose: the one it declares, or (dir=auto) its first strong character's."""
    if node["isolate"] in ("ltr", "rtl"):
        return node["isolate"]
    return first_strong(node["text"]) or node["block_direction"]


@pytest.fixture(scope="module")
def rtl_nodes(browser, built) -> list[dict]:
    context = browser.new_context(viewport={"width": 600, "height": 900})
    try:
        context.route("**/*", lambda r: r.abort("blockedbyclient"))
        page = context.new_page()
        page.set_content(built["bilingual-rtl"], wait_until="load")
        return page.evaluate(TEXT_NODES_JS)
    finally:
        context.close()


def primary(lang: str) -> str:
    return lang.split("-")[0].lower()


def test_the_bilingual_issue_is_arabic_and_right_to_left_at_the_root(built):
    root = re.search(r"<html\b[^>]*>", built["bilingual-rtl"]).group(0)
    assert 'lang="ar"' in root and 'dir="rtl"' in root, root


def test_every_arabic_text_node_computes_rtl(rtl_nodes):
    arabic = [n for n in rtl_nodes if primary(n["lang"]) == "ar"]
    assert len(arabic) >= 60, f"too few Arabic text nodes to mean anything: {len(arabic)}"
    wrong = [
        n
        for n in arabic
        if n["direction"] != ("rtl" if n["isolate"] is None else isolate_direction(n))
    ]
    assert wrong == [], f"Arabic text laid out left to right: {wrong[:5]}"
    # The Arabic letters themselves are never inside a left-to-right run.
    ltr_arabic = [n for n in arabic if has_arabic(n["text"]) and n["direction"] != "rtl"]
    assert ltr_arabic == [], ltr_arabic[:5]


JAPANESE_PARTS = (
    # the story: kicker, title, byline, summary, pull quote, link
    "エッセイ",
    "アンマンで見つけた",
    "文・大谷健二",
    "書家の大谷健二さんが",
    "線は、書き手の呼吸",
    "エッセイを読む",
    # the section: heading, intro, an item's title, note and source
    "日本語の記事",
    "今月の日本語の読みもの",
    "アラビア書道入門",
    "ナスフ体",
    "カルチャーノート",
    # the link item: title, text, label, and its image's alt text, caption and credit
    "ボランティア募集",
    "展覧会の受付と案内",
    "応募フォームへ",
    "昨年の展覧会のボランティア",
    "写真：森由紀",
)


def test_every_japanese_text_node_computes_ltr(rtl_nodes):
    japanese = [n for n in rtl_nodes if primary(n["lang"]) == "ja"]
    assert len(japanese) >= 12, f"the Japanese items lost their lang: {len(japanese)} nodes"
    wrong = [n for n in japanese if n["direction"] != "ltr"]
    assert wrong == [], f"Japanese text laid out right to left: {wrong[:5]}"
    # The items said `lang: ja`: every part of them is Japanese, the theme's parts too.
    unmarked = [
        expected for expected in JAPANESE_PARTS if not any(expected in n["text"] for n in japanese)
    ]
    assert unmarked == [], f"parts of Japanese items not marked lang=ja: {unmarked}"


def test_body_text_aligns_with_its_direction(rtl_nodes):
    body = [n for n in rtl_nodes if n["body_text"] and n["visible"] and n["text_align"] != "center"]
    assert len(body) >= 40, f"too few body text nodes measured: {len(body)}"
    wrong = []
    for n in body:
        lang = primary(n["lang"])
        expected = {"ar": "right", "ja": "left"}.get(lang)
        if expected is None:
            continue
        got = effective_alignment(n["text_align"], n["block_direction"])
        if got != expected:
            wrong.append((lang, got, n["block_tag"], n["text"][:40]))
    assert wrong == [], f"text aligned against its direction: {wrong[:8]}"


def test_mixed_script_dates_keep_their_own_direction(rtl_nodes):
    """'… ٣ مايو. ／ 5月3日開講' must never read as another date: the Japanese run is isolated."""
    japanese_date = [n for n in rtl_nodes if "5月3日" in n["text"]]
    assert japanese_date, "the announcement with both dates is missing"
    for node in japanese_date:
        if has_arabic(node["text"]):
            # one text node holding both scripts: the browser's bidi algorithm alone decides
            # where the digits go, which is how '5月3日' came to read '12月3日' before
            pytest.fail(f"Arabic and Japanese dates share one unisolated text node: {node}")
        assert node["direction"] == "ltr", node
        assert node["isolate"] == "ltr" or primary(node["lang"]) == "ja", node


# --------------------------------------------------------------------------- phones
OVERFLOW_JS = """
(width) => {
  const root = document.documentElement;
  const sticking = [];
  for (const el of document.body.querySelectorAll('*')) {
    const r = el.getBoundingClientRect();
    if (r.width === 0) continue;
    if (r.right > width + 0.5 || r.left < -0.5) {
      // inside a box that scrolls on its own, overflow is that box's, not the page's
      let inner = false;
      for (let p = el.parentElement; p; p = p.parentElement) {
        const o = getComputedStyle(p).overflowX;
        if (o === 'auto' || o === 'scroll' || o === 'hidden') { inner = true; break; }
      }
      const name = el.tagName.toLowerCase() + (el.className ? '.' + el.className : '');
      if (!inner) sticking.push(name);
    }
  }
  const boxes = [...document.querySelectorAll('.md-table-box')].map(b => ({
    right: b.getBoundingClientRect().right, scroll: b.scrollWidth, client: b.clientWidth,
    overflow: getComputedStyle(b).overflowX,
  }));
  const pres = [...document.querySelectorAll('pre')].map(p => p.getBoundingClientRect().right);
  return {scroll_width: root.scrollWidth, sticking: sticking.slice(0, 10), boxes, pres};
}
"""


@pytest.mark.parametrize("name", list(EXAMPLES))
def test_no_horizontal_scroll_at_320px(open_email, built, name):
    opened = open_email(built[name], width=PHONE)
    measured = opened.evaluate(OVERFLOW_JS, PHONE)
    assert measured["scroll_width"] <= PHONE, (
        f"{name} scrolls sideways at {PHONE} px: {measured['scroll_width']} px wide; "
        f"sticking out: {measured['sticking']}"
    )
    for right in measured["pres"]:
        assert right <= PHONE, f"{name}: a code block reaches {right} px"
    for box in measured["boxes"]:
        assert box["right"] <= PHONE and box["overflow"] == "auto", box


def test_the_weekly_really_has_code_and_a_wide_table_on_the_phone(open_email, built):
    """Not vacuous: the weekly's six code blocks and its six-column table are there at 320 px."""
    measured = open_email(built["weekly-links"], width=PHONE).evaluate(OVERFLOW_JS, PHONE)
    assert len(measured["pres"]) >= 5 and len(measured["boxes"]) == 1, measured


def test_code_blocks_show_exactly_their_code(open_email):
    """What the reader sees in each <pre> is the code as written: indentation, blank lines and
    line breaks between highlighted tokens included."""
    result = build_issue(EXAMPLES["weekly-links"], write=False)
    expected = [block.text.rstrip("\n") for block in code_blocks(result.issue)]
    shown = open_email(result.rendered.html).evaluate(
        "() => [...document.querySelectorAll('pre')].map(p => p.innerText)"
    )
    assert len(shown) == len(expected) >= 5
    shown_texts = {got.rstrip("\n") for got in shown}
    changed = [want for want in expected if want not in shown_texts]
    assert changed == [], f"code shown otherwise than written: {changed}; shown: {shown}"


SPLIT_WORDS_JS = """
() => {
  const split = [];
  for (const cell of document.querySelectorAll('table.md-table th, table.md-table td')) {
    const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      const re = /[^\\s-]+-?/g;  // a break after a hyphen is a line break, not a split word
      for (let m = re.exec(node.nodeValue); m; m = re.exec(node.nodeValue)) {
        const range = document.createRange();
        range.setStart(node, m.index);
        range.setEnd(node, m.index + m[0].length);
        const tops = new Set([...range.getClientRects()].map(r => Math.round(r.top)));
        if (tops.size > 1) split.push(m[0]);
      }
    }
  }
  return split;
}
"""


def test_a_wide_table_scrolls_in_its_box_rather_than_splitting_its_words(open_email, built):
    """At 320 px the weekly's six-column table is wider than the phone: its box scrolls, and no
    number or word is broken across lines ('0.17.2' shown as '0.1' over '7.2' reads wrong)."""
    opened = open_email(built["weekly-links"], width=PHONE)
    split = opened.evaluate(SPLIT_WORDS_JS)
    assert split == [], f"words split across lines in table cells: {split}"


# --------------------------------------------------------------------------- images off
ALT_JS = """
() => [...document.images].map(img => {
  const style = getComputedStyle(img);
  let background = null;
  for (let el = img; el; el = el.parentElement) {
    const bg = getComputedStyle(el).backgroundColor;
    const alpha = bg.startsWith('rgba') ? parseFloat(bg.split(',')[3]) : 1;
    if (bg !== 'transparent' && alpha > 0) { background = bg; break; }
  }
  return {
    alt: img.getAttribute('alt'),
    src: img.getAttribute('src'),
    loaded: img.complete && img.naturalWidth > 0,
    font_size: parseFloat(style.fontSize),
    color: style.color,
    background: background || 'rgb(255, 255, 255)',  // the canvas of a page with none
  };
})
"""


def parse_rgb(css: str) -> tuple[float, float, float, float]:
    numbers = [float(x) for x in re.findall(r"[\d.]+", css)]
    red, green, blue = numbers[:3]
    return red, green, blue, numbers[3] if len(numbers) > 3 else 1.0


def luminance(rgb: tuple[float, float, float]) -> float:
    def channel(value: float) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    red, green, blue = (channel(v) for v in rgb)
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue


def contrast(color: str, background: str) -> float:
    fr, fg, fb, alpha = parse_rgb(color)
    br, bg, bb, _ = parse_rgb(background)
    # a translucent text colour shows blended with what is behind it
    shown = tuple(alpha * f + (1 - alpha) * b for f, b in ((fr, br), (fg, bg), (fb, bb)))
    lighter, darker = sorted((luminance(shown), luminance((br, bg, bb))), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("name", list(EXAMPLES))
def test_alt_text_is_readable_with_images_off(open_email, built, name, scheme):
    opened = open_email(built[name], width=600)
    if scheme == "dark":
        opened.page.emulate_media(color_scheme="dark")
    assert opened.evaluate(f"matchMedia('(prefers-color-scheme: {scheme})').matches")
    images = opened.evaluate(ALT_JS)
    assert len(images) == built[name].count("<img"), "the browser saw other images than the HTML"
    if name != "weekly-links":  # the weekly has no images; the others have several
        assert len(images) >= 5, f"{name}: too few images to mean anything"
    refused_images = {url for kind, url in opened.refused if kind == "image"}
    unreadable = []
    for image in images:
        assert not image["loaded"] and image["src"] in refused_images, (
            f"images were not off: {image['src']}"
        )
        assert image["alt"], f"{image['src']} has no alt text"
        ratio = contrast(image["color"], image["background"])
        if image["font_size"] < MIN_ALT_FONT_PX or ratio < MIN_CONTRAST:
            unreadable.append(
                f"{image['alt'][:40]!r}: {image['font_size']}px, {image['color']} on "
                f"{image['background']} = {ratio:.2f}:1"
            )
    assert unreadable == [], f"{name} ({scheme}): alt text hard to read: {unreadable}"
