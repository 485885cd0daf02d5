"""The preheader: the inbox's preview line, hidden from the reader, and nothing after it leaks.

An inbox builds the preview line from the first text of the HTML, hidden or not.
So the preheader comes first, then a run of blank characters long enough to fill
the line; without them "View this issue in your browser" follows the preheader.
In the opened email Chromium must show none of it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dispatch_mail.publish.build import BuildResult, build_issue
from tests.helpers.browser import chromium as chromium  # noqa: F401 (fixture)
from tests.helpers.html import Page
from tests.helpers.project import REPO

PADDING = {"\u034f", "\u200c", "\xa0"}  # combining grapheme joiner, zero-width non-joiner, nbsp
FILLS_THE_LINE = 80  # blank units after the preheader: previews show at most ~200 characters


@pytest.fixture(scope="module")
def q1() -> BuildResult:
    return build_issue(REPO / "issues" / "2026-q1", write=False)


@pytest.fixture
def opened(chromium: object, q1: BuildResult) -> Iterator[object]:
    """The Q1 HTML open in Chromium at 600 px, every request refused (no network)."""
    page = chromium.new_page(viewport={"width": 600, "height": 900})  # type: ignore[attr-defined]
    page.route("**/*", lambda route: route.abort())
    page.set_content(q1.rendered.html, wait_until="domcontentloaded")
    try:
        yield page
    finally:
        page.close()


def test_the_preheader_is_the_first_text_then_blank_padding(q1: BuildResult) -> None:
    preheader = q1.issue.preheader or ""
    html = q1.rendered.html
    text = "".join(Page(html[html.index("<body") :]).data).lstrip()
    assert text.startswith(preheader)
    after = text[len(preheader) :]
    blank = len(after) - len(after.lstrip("".join(PADDING)))
    assert blank >= FILLS_THE_LINE * len(PADDING), repr(after[:80])
    assert after[blank:].lstrip().startswith("View this issue in your browser")


def test_chromium_shows_none_of_it(opened: object, q1: BuildResult) -> None:
    page = opened
    preheader = page.locator(".dm-preheader")  # type: ignore[attr-defined]
    assert preheader.count() == 1
    assert preheader.text_content().startswith(q1.issue.preheader)
    assert not preheader.is_visible()
    assert preheader.evaluate("e => getComputedStyle(e).display") == "none"
    assert preheader.bounding_box() is None  # not laid out at all
    assert page.get_by_text("View this issue in your browser").is_visible()  # type: ignore[attr-defined]


def test_a_client_that_drops_display_none_still_shows_nothing(opened: object) -> None:
    """The other properties hide it too: no width, no height, overflow hidden, transparent."""
    preheader = opened.locator(".dm-preheader")  # type: ignore[attr-defined]
    preheader.evaluate("e => e.style.removeProperty('display')")
    box = preheader.bounding_box()
    assert box is not None and box["width"] == 0 and box["height"] == 0, box
    assert preheader.evaluate("e => getComputedStyle(e).opacity") == "0"


def test_an_issue_without_a_preheader_gets_no_hidden_block(write_project: object) -> None:
    issue_dir = write_project()  # type: ignore[operator]
    built = build_issue(issue_dir, write=False)
    assert built.issue.preheader is None
    assert "dm-preheader" not in built.rendered.html
