"""The built issues in a real headless Chromium: phones, alt text, dark mode, and the PNGs.

One browser for the whole module. Without Chromium or playwright these tests
skip and say why, except in CI (CI=true), where they fail: CI must never
silently skip the only tests that look at the email the way readers do.
"""

from __future__ import annotations

import importlib.util
import os
import struct
from pathlib import Path

import pytest
from click.testing import CliRunner

from dispatch_mail.browser.chromium import (
    ChromiumSession,
    browser_unavailable_reason,
    find_chromium,
    require_chromium,
)
from dispatch_mail.browser.screenshot import (
    LAYOUT_WIDTHS,
    MIN_CONTRAST,
    SHOTS,
    layout_report,
    take_screenshots,
)
from dispatch_mail.cli import main
from dispatch_mail.errors import BrowserUnavailable, ChromiumMissing
from dispatch_mail.publish.build import build_issue
from dispatch_mail.quality.contrast import relative_luminance as _luminance
from tests.helpers.http_server import Reply

ROOT = Path(__file__).resolve().parent.parent
ISSUES = ["issues/2026-q1", "examples/all-sections"]


def browser_missing(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true, so the browser tests must run, not skip: {reason}")
    pytest.skip(f"no browser for screenshots: {reason}")


@pytest.fixture(scope="module")
def chromium():
    reason = browser_unavailable_reason()
    if reason:
        browser_missing(reason)
    session = ChromiumSession()
    try:
        session.__enter__()
    except BrowserUnavailable as exc:  # found, but would not start
        browser_missing(str(exc))
    yield session
    session.__exit__(None, None, None)


@pytest.fixture(scope="module", params=ISSUES)
def issue_html(request) -> str:
    # Rendered in memory: nothing is written into the repository.
    return build_issue(ROOT / request.param, write=False).rendered.html


@pytest.fixture(scope="module")
def layout(chromium, issue_html) -> dict:
    return layout_report(issue_html, browser=chromium)


# --------------------------------------------------------------------------- the real issues
def test_no_horizontal_scrolling_on_phones(layout):
    assert sorted(layout["widths"]) == sorted(LAYOUT_WIDTHS) == [320, 375]
    for width, result in layout["widths"].items():
        assert result["viewport"] == width
        assert not result["horizontal_scroll"], (
            f"scrolls sideways at {width} px: content is {result['scroll_width']} px wide; "
            f"sticking out: {result['overflowing']}"
        )
    assert layout["horizontal_scroll"] == []


def test_every_image_has_alt_text(layout, issue_html):
    images = layout["images"]
    assert images["count"] == issue_html.count("<img"), (
        "the browser saw a different number of images than the HTML has"
    )
    assert images["count"] >= 1  # the logo, at least: the check is not vacuous
    assert images["missing_alt"] == []
    assert images["empty_alt"] == [], "the theme has no decorative images: every one needs words"


def test_dark_mode_text_is_readable(layout):
    dark = layout["contrast"]["dark"]
    assert dark["checked"] >= 15, f"too few text elements measured to mean anything: {dark}"
    assert dark["uncertain"] == 0
    # Dark mode really applied: the text sits on a dark background and is lighter than it.
    worst = dark["worst"][0]
    assert _luminance(worst["background"]) < 0.1 < _luminance(worst["color"]), worst
    assert dark["min_ratio"] >= MIN_CONTRAST, (
        f"dark-mode text below {MIN_CONTRAST}:1: {dark['worst']}"
    )
    assert layout["contrast"]["light"]["min_ratio"] >= MIN_CONTRAST, layout["contrast"]["light"][
        "worst"
    ]
    assert layout["ok"]


def test_screenshots_are_pngs_of_the_expected_widths(chromium, issue_html, tmp_path):
    out = tmp_path / "shots"
    written = take_screenshots(issue_html, out, browser=chromium)
    assert set(written) == {"desktop", "mobile", "dark"}
    expected = {"desktop": 800, "mobile": 375, "dark": 600}
    assert {name: width for name, (width, _) in SHOTS.items()} == expected
    for name, width in expected.items():
        path = written[name]
        assert path == out / f"{name}.png" and path.is_file()
        png_width, png_height = png_size(path)
        assert png_width == width, (
            f"{name}.png is {png_width} px wide (sideways overflow?), expected {width}"
        )
        assert png_height > 1000, f"{name}.png is not a full-page screenshot ({png_height} px tall)"
    assert sorted(p.name for p in out.iterdir()) == ["dark.png", "desktop.png", "mobile.png"], (
        "temporary files left behind"
    )


# ------------------------------------------------------------ the measurements catch problems
BAD_PAGE = """<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>:root { color-scheme: light dark; }
@media (prefers-color-scheme: dark) { body { background: #101010; } }</style></head>
<body style="margin:0">
<div class="dm-text" style="color:#222222"><p>Dark text that dark mode forgot.</p></div>
<table style="width:600px"><tr><td>Six hundred pixels wide.</td></tr></table>
<img src="https://images.example.org/photo.png" width="200" height="100">
<img src="https://images.example.org/spacer.gif" alt=""></body></html>"""


@pytest.fixture
def recording_server(http_server):
    """A loopback HTTP server that records every request it gets: none should arrive."""
    server = http_server(lambda method, path: Reply(404))
    return server.port, server.requests


def test_layout_report_finds_overflow_missing_alt_and_unreadable_dark_text(chromium):
    report = layout_report(BAD_PAGE, browser=chromium)
    for width in LAYOUT_WIDTHS:
        assert report["widths"][width]["horizontal_scroll"]
        assert report["widths"][width]["scroll_width"] >= 600
        assert any(e["element"].startswith("table") for e in report["widths"][width]["overflowing"])
    assert report["images"]["count"] == 2
    assert report["images"]["missing_alt"] == ["https://images.example.org/photo.png"]
    assert report["images"]["empty_alt"] == ["https://images.example.org/spacer.gif"]
    dark = report["contrast"]["dark"]
    assert dark["min_ratio"] < 1.5 and dark["worst"][0]["background"] == "#101010", dark
    assert report["contrast"]["light"]["min_ratio"] > 10
    assert not report["ok"]


def test_screenshots_make_no_network_request(chromium, recording_server, tmp_path):
    port, seen = recording_server
    urls = [f"http://127.0.0.1:{port}/logo.png", "https://static.example.org/font.css"]
    html = (
        f'<!DOCTYPE html><html><body><img src="{urls[0]}" alt="Logo">'
        f'<link rel="stylesheet" href="{urls[1]}"></body></html>'
    )
    before = len(chromium.blocked)
    take_screenshots(html, tmp_path, browser=chromium)
    # Our route stopped every request the page made, and none reached the server.
    assert sorted(set(chromium.blocked[before:])) == sorted(urls)
    assert seen == [], f"the page reached the network: {seen}"


# ------------------------------------------------------ finding Chromium (no browser started)
def test_an_explicit_chromium_is_the_only_candidate(tmp_path, monkeypatch):
    monkeypatch.delenv("DISPATCH_CHROMIUM", raising=False)
    fake = tmp_path / "my-chromium"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    assert find_chromium(str(fake)) == str(fake)
    assert find_chromium(tmp_path / "nothing-here") is None  # no quiet fallback to another browser
    monkeypatch.setenv("DISPATCH_CHROMIUM", str(fake))
    assert find_chromium() == str(fake)
    monkeypatch.setenv("DISPATCH_CHROMIUM", str(tmp_path / "gone"))
    assert find_chromium() is None
    with pytest.raises(ChromiumMissing, match="DISPATCH_CHROMIUM=.*gone.*apt-get install chromium"):
        require_chromium()


def test_missing_chromium_is_a_usage_error_with_a_clear_message(tmp_path):
    with pytest.raises(ChromiumMissing) as caught:
        require_chromium(tmp_path / "no-chromium")
    assert caught.value.exit_code == 2
    assert "no-chromium" in str(caught.value) and "never downloads a browser" in str(caught.value)
    assert caught.value.hint == "chromium" and "--chromium" not in str(caught.value)
    result = CliRunner().invoke(
        main,
        [
            "screenshot",
            str(ROOT / "examples/minimal"),
            "--out",
            str(tmp_path),
            "--chromium",
            str(tmp_path / "no-chromium"),
        ],
    )
    assert result.exit_code == 2, result.output
    assert "Chromium not found at" in result.output
    assert "(--chromium or DISPATCH_CHROMIUM)" in result.output  # the command names its option
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- helpers
def png_size(path: Path) -> tuple[int, int]:
    """Width and height from the IHDR chunk, which a valid PNG has first, after the signature."""
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path.name} is not a PNG"
    assert head[12:16] == b"IHDR", f"{path.name}: no IHDR chunk first"
    return struct.unpack(">II", head[16:24])


def test_a_chromium_that_will_not_start_says_what_it_printed(tmp_path):
    if importlib.util.find_spec("playwright") is None:
        browser_missing("the playwright package is not installed")
    fake = tmp_path / "broken-chromium"
    fake.write_text(
        "#!/bin/sh\necho 'error while loading shared libraries: libnss3.so' >&2\nexit 127\n"
    )
    fake.chmod(0o755)
    result = CliRunner().invoke(
        main,
        [
            "screenshot",
            str(ROOT / "examples/minimal"),
            "--out",
            str(tmp_path / "shots"),
            "--chromium",
            str(fake),
        ],
    )
    assert result.exit_code == 2, result.output
    assert (
        f"Chromium at {fake} did not start: exit code 127; error while loading shared libraries"
        in result.output
    )
    assert not (tmp_path / "shots").exists()


def test_screenshot_takes_several_issues_and_reports_each(chromium, tmp_path):
    """Like build and check: ISSUE_DIR... (or --all); a bad issue fails alone, exit the worst."""
    out = tmp_path / "shots"
    result = CliRunner().invoke(
        main,
        [
            "screenshot",
            str(ROOT / "examples/minimal"),
            str(ROOT / "examples/all-sections"),
            str(tmp_path / "nowhere"),
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 2, result.output  # the missing folder: a usage error
    assert "nowhere: no such issue folder" in result.stderr
    for slug in ("minimal", "all-sections"):
        assert sorted(p.name for p in (out / slug).iterdir()) == sorted(
            f"{name}.png" for name in SHOTS
        )
