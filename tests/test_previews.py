"""`dispatch build --all --previews`: the gallery CI uploads, end to end through the CLI.

The first tests photograph a copy of the repository's project in a real
Chromium (one launch for the module; skipped without a browser, failed in CI).
The others name a Chromium that does not exist, so they start no browser and
run everywhere: a broken issue, escaping, and the missing-browser rule.
"""

from __future__ import annotations

import os
import re
import struct
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner

from dispatch_mail.browser.chromium import browser_unavailable_reason
from dispatch_mail.cli import main
from tests.helpers.project import (
    REPO_CONFIG,
    REPO_TEMPLATES,
    create_project,
    repository_issues,
)

ROOT = Path(__file__).resolve().parent.parent
SLUGS = ["2026-q1", "2025-q4"]  # the repository's issues, newest first as the gallery lists them
ISSUE_FILES = ["email.html", "email.txt", "email.eml", "email.mjml", "check.txt", "check.json"]
SHOT_WIDTHS = {"desktop.png": 800, "mobile.png": 375, "dark.png": 600}
VOID = {
    "area",
    "base",
    "br",
    "col",
    "embed",
    "hr",
    "img",
    "input",
    "link",
    "meta",
    "source",
    "track",
    "wbr",
}


def copy_project(dest: Path) -> Path:
    """The repository's project (dispatch.yaml, issues/, templates/) in a folder to write in."""
    templates = REPO_TEMPLATES if REPO_TEMPLATES.is_dir() else None
    return create_project(
        dest, config=REPO_CONFIG, issues=repository_issues(), templates=templates
    )


def run_previews(project: Path, out: Path, *extra: str, env: dict[str, str | None] | None = None):
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(project)
        for key, value in (env or {}).items():
            if value is None:
                mp.delenv(key, raising=False)
            else:
                mp.setenv(key, value)
        return CliRunner().invoke(main, ["build", "--all", "--previews", "--out", str(out), *extra])


class Page(HTMLParser):
    """The gallery as the tests need it; fails on a closing tag that does not match its opening."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.links: list[str] = []
        self.images: list[dict[str, str]] = []
        self.articles: list[dict[str, str]] = []
        self.tags: set[str] = set()
        self.text: list[str] = []
        self._article: dict[str, str] | None = None
        self.feed(text)
        self.close()
        assert self.stack == [], f"unclosed elements: {self.stack}"

    def handle_starttag(self, tag, attrs):
        a = {k: v or "" for k, v in attrs}
        self.tags.add(tag)
        if tag not in VOID:
            self.stack.append(tag)
        if tag == "a":
            self.links.append(a["href"])
        elif tag == "img":
            self.images.append(a)
        elif tag == "article":
            self._article = {"id": a["id"], "class": a["class"], "text": ""}
            self.articles.append(self._article)

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, (
            f"</{tag}> closes <{self.stack[-1] if self.stack else None}>"
        )
        self.stack.pop()
        if tag == "article":
            self._article = None

    def handle_data(self, data):
        self.text.append(data)
        if self._article is not None:
            self._article["text"] += data


def png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR", f"{path.name} is not a PNG"
    return struct.unpack(">II", head[16:24])


# --------------------------------------------------------------------------- with a real browser
def browser_missing(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true, so the browser tests must run, not skip: {reason}")
    pytest.skip(f"no browser for screenshots: {reason}")


@pytest.fixture(scope="module")
def gallery(tmp_path_factory):
    reason = browser_unavailable_reason()
    if reason:
        browser_missing(reason)
    project = copy_project(tmp_path_factory.mktemp("project"))
    out = tmp_path_factory.mktemp("previews")
    result = run_previews(project, out)
    if "screenshots skipped:" in result.output:  # found, but would not start
        browser_missing(result.output)
    assert result.exit_code == 0, result.output
    index = out / "index.html"
    assert index.is_file()
    return out, Page(index.read_text(encoding="utf-8")), result.output


def test_gallery_links_every_issue_and_its_files(gallery):
    out, page, output = gallery
    assert [a["id"] for a in page.articles] == SLUGS
    assert all(a["class"] == "built" for a in page.articles)
    for slug in SLUGS:
        for name in [*ISSUE_FILES, "layout.json"]:
            assert f"{slug}/{name}" in page.links, f"no link to {slug}/{name}"
    for href in page.links + [img["src"] for img in page.images]:
        assert "://" not in href and not href.startswith("/"), f"not self-contained: {href}"
        assert (out / href).is_file(), f"link to a missing file: {href}"
    assert not page.tags & {"script", "link", "iframe"}
    assert "2 of 2 issues built" in output and "gallery" in output


def test_gallery_shows_the_three_screenshots_of_each_issue(gallery):
    out, page, _ = gallery
    for slug in SLUGS:
        shots = {img["src"]: img for img in page.images if img["src"].startswith(f"{slug}/")}
        assert sorted(shots) == sorted(f"{slug}/{name}" for name in SHOT_WIDTHS)
        for name, width in SHOT_WIDTHS.items():
            src = f"{slug}/{name}"
            assert src in page.links, f"thumbnail {src} does not link to the full PNG"
            assert shots[src]["alt"], f"thumbnail {src} has no alt text"
            assert png_size(out / src)[0] == width


def test_gallery_shows_subjects_dates_and_check_counts(gallery):
    import json

    out, page, _ = gallery
    for article in page.articles:
        report = json.loads((out / article["id"] / "check.json").read_text(encoding="utf-8"))[0]
        assert f"check: {report['errors']} error" in article["text"]
        assert f"{report['warnings']} warning" in article["text"]
    q1 = page.articles[0]["text"]
    assert "DPDK Dispatch Q1 2026" in q1 and "2026-03-26" in q1
    assert "no sideways scrolling at 320/375 px" in q1


# --------------------------------------------------------------------------- no browser needed
BROKEN = """subject: A broken issue
name: Broken
date: 2026-06-30
"<script>alert(1)</script>": oops
masthead:
  headline: Broken
sections: []
"""


def test_a_broken_issue_shows_its_errors_and_the_others_are_built(tmp_path):
    project = copy_project(tmp_path / "project")
    (project / "issues" / "2026-q2").mkdir()
    (project / "issues" / "2026-q2" / "issue.yaml").write_text(BROKEN, encoding="utf-8")
    q4 = project / "issues" / "2025-q4" / "issue.yaml"
    q4.write_text(
        re.sub(
            r"(?m)^subject: .*$",
            lambda _: 'subject: "Q4 <b>bold</b> & \\"quoted\\""',
            q4.read_text(encoding="utf-8"),
            count=1,
        ),
        encoding="utf-8",
    )
    out = tmp_path / "previews"

    result = run_previews(
        project, out, "--chromium", str(tmp_path / "no-chromium"), env={"CI": None}
    )

    assert result.exit_code == 1, result.output
    assert "issues/2026-q2/issue.yaml:4" in result.output
    raw = (out / "index.html").read_text(encoding="utf-8")
    page = Page(raw)
    assert [a["id"] for a in page.articles] == ["2026-q2", *SLUGS]
    broken = page.articles[0]
    assert broken["class"] == "failed"
    assert "failed" in broken["text"] and "issues/2026-q2/issue.yaml:4:1" in broken["text"]
    assert "<script>alert(1)</script>" in broken["text"]  # shown as text ...
    assert "<script>" not in raw and "&lt;script&gt;" in raw  # ... because it was escaped
    assert 'Q4 <b>bold</b> & "quoted"' in page.articles[2]["text"] and "<b>bold" not in raw
    for slug in SLUGS:  # the others were built, checked and linked
        for name in ISSUE_FILES:
            assert (out / slug / name).is_file()
            assert f"{slug}/{name}" in page.links
    assert not (out / "2026-q2" / "email.html").exists()
    assert page.images == []
    assert "Screenshots skipped" in "".join(page.text) and "no-chromium" in raw


@pytest.mark.parametrize("ci", ["true", None])
def test_a_missing_chromium_fails_the_previews_only_in_ci(tmp_path, ci):
    project = copy_project(tmp_path / "project")
    out = tmp_path / "previews"
    stale = out / "2026-q1" / "desktop.png"  # left by an earlier run that had a browser
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"old")

    result = run_previews(project, out, "--chromium", str(tmp_path / "no-chromium"), env={"CI": ci})

    assert result.exit_code == (1 if ci else 0), result.output
    assert (
        f"{'error' if ci else 'note'}: screenshots skipped: Chromium not found at" in result.output
    )
    raw = (out / "index.html").read_text(encoding="utf-8")
    assert 'id="screenshots-skipped"' in raw
    assert ("fails the build in CI" in raw) == bool(ci)
    assert not stale.exists(), "a stale screenshot would be uploaded as if it were current"
    assert (out / "2026-q1" / "email.html").is_file()
