"""`dispatch archive`: real builds of a copy of this repository's newsletter, read back with
real parsers."""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import feedparser
import pytest
from click.testing import CliRunner

from dispatch_mail.cli import main
from dispatch_mail.errors import ContentError, UsageError
from dispatch_mail.publish.archive import FEED_NAME, ArchiveResult, build_archive
from tests.helpers.project import REPO_CONFIG, create_project, repository_issues

ROOT = Path(__file__).resolve().parent.parent
BASE_URL = "https://www.dpdk.org/newsletter/"
ATOM = "{http://www.w3.org/2005/Atom}"
# The repository's two issues, newest first, as (slug, subject, date).
ISSUES = [
    ("2026-q1", "DPDK Dispatch Q1 2026", "2026-03-26"),
    ("2025-q4", "DPDK Dispatch Q4 – The Quarterly Newsletter", "2025-10-15"),
]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the repository's newsletter: dispatch.yaml and issues/."""
    return create_project(tmp_path / "news", config=REPO_CONFIG, issues=repository_issues())


def run_dispatch(
    cwd: Path, *args: str, preexec_fn: Callable[[], None] | None = None
) -> subprocess.CompletedProcess[str]:
    """The real command in a process of its own, run from ``cwd``."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "dispatch_mail.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=preexec_fn,
        check=False,
    )


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def snapshot(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


class Links(HTMLParser):
    """Every href and src of a page, in order, with the text of each link."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.urls: list[str] = []
        self.anchors: list[tuple[str, str]] = []
        self._open: list[str] | None = None
        self._href = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("href", "src") and value is not None:
                self.urls.append(value)
        if tag == "a":
            self._href, self._open = dict(attrs).get("href") or "", []

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self._open.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._open is not None:
            self.anchors.append((self._href, "".join(self._open).strip()))
            self._open = None


def links_of(page: Path) -> Links:
    parser = Links()
    parser.feed(page.read_text(encoding="utf-8"))
    parser.close()
    return parser


def site_files(site: Path) -> list[Path]:
    return sorted(p for p in site.rglob("*") if p.is_file())


# ------------------------------------------------------------------ the site and its feed
def test_builds_a_page_per_issue_an_index_and_a_feed(project: Path) -> None:
    result = build_archive(project)

    site = project / "site"
    assert isinstance(result, ArchiveResult)
    assert result.out_dir == site
    assert result.pages == [site / slug / "index.html" for slug, _, _ in ISSUES]
    assert result.feed == site / "feed.xml"
    assert result.warnings == []
    assert [str(p.relative_to(site)) for p in site_files(site)] == [
        ".dispatch-archive",
        "2025-q4/index.html",
        "2026-q1/index.html",
        "feed.xml",
        "index.html",
    ]
    assert not [p for p in project.iterdir() if p.name.startswith(".site")], (
        "staging folders left behind"
    )


def test_feed_reads_back_with_a_real_feed_parser(project: Path) -> None:
    result = build_archive(project)

    feed = feedparser.parse(result.feed.read_bytes())
    assert not feed.bozo, feed.get("bozo_exception")
    assert feed.version == "atom10"
    assert feed.feed.id == BASE_URL
    assert feed.feed.title == "DPDK Dispatch"
    assert feed.feed.updated == "2026-03-26T00:00:00Z"
    assert {(link.rel, link.href) for link in feed.feed.links} == {
        ("self", BASE_URL + "feed.xml"),
        ("alternate", BASE_URL),
    }
    assert len(feed.entries) == 2
    for entry, (slug, subject, day) in zip(feed.entries, ISSUES, strict=True):
        assert entry.title == subject
        assert entry.id == entry.link == f"{BASE_URL}{slug}/"
        assert entry.updated == f"{day}T00:00:00Z"
        assert entry.updated_parsed[:6] == (*map(int, day.split("-")), 0, 0, 0)
        assert entry.content[0].type == "text/html"
        assert subject.split(" – ")[0] in entry.content[0].value
    newest, oldest = feed.entries
    assert newest.summary.startswith("Summit 2026 is six weeks away.")  # the preheader
    assert oldest.summary.startswith("Welcome to the Q4 DPDK Dispatch")  # no preheader: the intro


def test_feed_is_well_formed_atom(project: Path) -> None:
    result = build_archive(project)

    root = ET.parse(result.feed).getroot()
    assert root.tag == f"{ATOM}feed"
    for name in ("id", "title", "updated", "author"):
        assert root.find(f"{ATOM}{name}") is not None, name
    entries = root.findall(f"{ATOM}entry")
    assert len(entries) == 2
    for entry, (slug, _, _) in zip(entries, ISSUES, strict=True):
        content = entry.find(f"{ATOM}content")
        assert content is not None and content.get("type") == "html"
        # the web version itself, unescaped exactly once by the XML parser
        web = (result.out_dir / slug / "index.html").read_text(encoding="utf-8")
        assert content.text is not None and content.text.startswith("<!DOCTYPE html>")
        assert content.text[-2000:] == web[-2000:]


# ------------------------------------------------------------------ pages
def test_index_lists_the_issues_newest_first(project: Path) -> None:
    result = build_archive(project)

    index = links_of(result.index)
    issue_links = [(href, text) for href, text in index.anchors if href.endswith("/index.html")]
    assert issue_links == [(f"{slug}/index.html", subject) for slug, subject, _ in ISSUES]
    html = result.index.read_text(encoding="utf-8")
    assert '<time datetime="2026-03-26">26 March 2026</time>' in html
    assert '<time datetime="2025-10-15">15 October 2025</time>' in html
    assert html.index("2026-03-26") < html.index("2025-10-15")
    assert "Here’s what the community published this quarter." in html  # the preheader
    assert (
        '<link rel="alternate" type="application/atom+xml" title="DPDK Dispatch" href="feed.xml">'
        in html
    )


def test_issue_pages_are_the_web_version_with_a_way_back(project: Path) -> None:
    result = build_archive(project)

    for page, (slug, subject, _) in zip(result.pages, ISSUES, strict=True):
        html = page.read_text(encoding="utf-8")
        assert html.startswith('<!DOCTYPE html><html lang="en"')
        assert f"<title>{subject}</title>" in html
        assert (
            '<link rel="alternate" type="application/atom+xml" title="DPDK Dispatch" '
            'href="../feed.xml">'
            in html
        )
        assert f'<link rel="canonical" href="{BASE_URL}{slug}/">' in html
        assert ("../index.html", "← All issues") in links_of(page).anchors
        # the email's own links are untouched: "view in browser" points at the public page
        assert f'href="{BASE_URL}{slug}/"' in html
        assert html.count("<body") == html.count("</body>") == 1


def test_every_relative_link_resolves_inside_the_site(project: Path) -> None:
    result = build_archive(project)
    site = result.out_dir.resolve()

    checked = 0
    for page in site.rglob("*.html"):
        for url in links_of(page).urls:
            parts = urlsplit(url)
            if parts.scheme or parts.netloc or not parts.path:
                continue  # absolute, protocol-relative or a fragment on the same page
            target = (page.parent / unquote(parts.path)).resolve()
            if url.endswith("/"):
                target = target / "index.html"
            assert target.is_relative_to(site), f"{page}: {url} leaves the site"
            assert target.is_file(), f"{page}: {url} does not exist"
            checked += 1
    # index: a link per issue and the feed twice; each issue page: the feed and the index
    assert checked == 2 + 2 + 2 * 2


def test_pages_hold_no_merge_tokens_and_no_personal_data(project: Path) -> None:
    edit(
        project / "issues/2026-q1/issue.yaml", "\nmasthead:", '\ngreeting: "Hi {name},"\nmasthead:'
    )
    (project / "lists").mkdir()
    (project / "lists/subscribers.csv").write_text(
        "email,name\nada@example.org,Ada Lovelace\n", encoding="utf-8"
    )

    result = build_archive(project)

    page = result.pages[0].read_text(encoding="utf-8")
    assert "Hi there," in page  # the web version's greeting: the fallback, never a name
    for path in site_files(result.out_dir):
        text = path.read_text(encoding="utf-8")
        for personal in (
            "XDISPATCHMERGE",
            "ada@example.org",
            "Ada Lovelace",
            "{name}",
            "{token}",
            "unsubscribe?t=",
        ):
            assert personal not in text, f"{path.name}: {personal}"
    # the footer's unsubscribe link is the generic preferences page
    assert 'href="https://www.dpdk.org/newsletter/preferences"' in page


def test_text_from_the_manifests_is_escaped_everywhere(project: Path) -> None:
    edit(project / "dispatch.yaml", "name: DPDK Dispatch", 'name: "DPDK & <Friends>"')
    subject = 'R&D <b>bold</b> "quoted" ]]> it\'s'
    edit(
        project / "issues/2026-q1/issue.yaml",
        'subject: "DPDK Dispatch Q1 2026"',
        f"subject: '{subject.replace(chr(39), chr(39) * 2)}'",
    )

    result = build_archive(project)

    index = result.index.read_text(encoding="utf-8")
    assert "<b>bold</b>" not in index and "<Friends>" not in index
    assert "R&amp;D &lt;b&gt;bold&lt;/b&gt;" in index
    assert ("2026-q1/index.html", subject) in links_of(result.index).anchors
    page = result.pages[0].read_text(encoding="utf-8")
    assert 'title="DPDK &amp; &lt;Friends&gt;" href="../feed.xml"' in page
    ET.parse(result.feed)  # still well-formed
    feed = feedparser.parse(result.feed.read_bytes())
    assert not feed.bozo, feed.get("bozo_exception")
    assert feed.feed.title == "DPDK & <Friends>"
    assert feed.entries[0].title == subject


# ------------------------------------------------------------------ without base_url
def test_without_base_url_the_site_is_built_with_relative_links_and_tag_ids(project: Path) -> None:
    edit(project / "dispatch.yaml", "base_url: https://www.dpdk.org/newsletter/\n", "")

    result = build_archive(project)

    assert len(result.warnings) == 1 and "base_url" in result.warnings[0]
    feed = feedparser.parse(result.feed.read_bytes())
    assert not feed.bozo, feed.get("bozo_exception")
    # RFC 4151: the sender's domain, the date of the oldest issue, the newsletter's name
    assert feed.feed.id == "tag:dpdk.org,2025-10-15:dpdk-dispatch"
    assert [e.id for e in feed.entries] == [
        "tag:dpdk.org,2026-03-26:dpdk-dispatch/2026-q1",
        "tag:dpdk.org,2025-10-15:dpdk-dispatch/2025-q4",
    ]
    root = ET.parse(result.feed).getroot()
    hrefs = [link.get("href") for link in root.iter(f"{ATOM}link")]
    assert hrefs == ["feed.xml", "./", "2026-q1/", "2025-q4/"]
    for page in (result.index, *result.pages):
        html = page.read_text(encoding="utf-8")
        assert 'rel="canonical"' not in html
        assert "https://www.dpdk.org/newsletter/2026-q1" not in html
    assert ("../index.html", "← All issues") in links_of(result.pages[0]).anchors


# ------------------------------------------------------------------ failures leave the old site
def test_manifest_errors_leave_an_existing_site_untouched(project: Path) -> None:
    result = build_archive(project)
    before = snapshot(result.out_dir)
    edit(project / "issues/2025-q4/issue.yaml", "date: 2025-10-15", "date: someday")
    edit(project / "issues/2026-q1/issue.yaml", "\nmasthead:", "\nmasthed: typo\nmasthead:")

    with pytest.raises(ContentError) as caught:
        build_archive(project)

    # every problem of every issue in one error
    paths = {Path(p.path).as_posix() for p in caught.value.problems}
    assert any(p.endswith("2025-q4/issue.yaml") for p in paths), paths
    assert any(p.endswith("2026-q1/issue.yaml") for p in paths), paths
    assert snapshot(result.out_dir) == before
    assert sorted(p.name for p in project.iterdir()) == ["dispatch.yaml", "issues", "site"]


def test_a_failure_while_writing_leaves_the_old_site_and_no_staging_folder(project: Path) -> None:
    result = build_archive(project)
    before = snapshot(result.out_dir)
    edit(project / "issues/2026-q1/issue.yaml", 'name: "Q1 2026"', 'name: "Q1 2026, revised"')
    # A real write failure: the kernel refuses any file larger than every page and the
    # index, so the feed, written last, fails after all the others were written.
    sizes = {name: len(data) for name, data in before.items()}
    limit = max(size for name, size in sizes.items() if name != FEED_NAME) + 4096
    assert sizes[FEED_NAME] > limit + 4096  # the rebuilt feed cannot fit either

    def small_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))  # Python ignores SIGXFSZ

    run = run_dispatch(project, "archive", preexec_fn=small_files)

    assert run.returncode == 1, run.stderr
    assert run.stderr.splitlines() == [f"error: cannot write site/{FEED_NAME}: File too large"]
    assert "internal error" not in run.stdout + run.stderr
    assert snapshot(result.out_dir) == before
    assert sorted(p.name for p in project.iterdir()) == ["dispatch.yaml", "issues", "site"]


def test_a_rebuild_replaces_the_whole_site(project: Path) -> None:
    build_archive(project)
    shutil.rmtree(project / "issues/2025-q4")

    result = build_archive(project)

    assert [str(p.relative_to(result.out_dir)) for p in site_files(result.out_dir)] == [
        ".dispatch-archive",
        "2026-q1/index.html",
        "feed.xml",
        "index.html",
    ]
    assert len(feedparser.parse(result.feed.read_bytes()).entries) == 1


def test_refuses_to_replace_a_folder_that_is_not_an_archive(project: Path, tmp_path: Path) -> None:
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "todo.txt").write_text("keep me", encoding="utf-8")

    with pytest.raises(UsageError, match="not a dispatch archive"):
        build_archive(project, notes)
    with pytest.raises(UsageError, match="replace the project"):
        build_archive(project, project)

    assert (notes / "todo.txt").read_text(encoding="utf-8") == "keep me"
    assert (project / "dispatch.yaml").is_file()


# ------------------------------------------------------------------ the command
def test_cli_builds_the_archive_from_the_project_folder(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(project / "issues")  # any folder inside the project will do
    out = tmp_path / "public"

    result = CliRunner().invoke(main, ["archive", "--out", str(out)])

    assert result.exit_code == 0, result.output
    assert "archive: 2 issues" in result.output and str(out.resolve()) in result.output
    assert (out / "index.html").is_file() and (out / "2026-q1/index.html").is_file()
    assert not feedparser.parse((out / "feed.xml").read_bytes()).bozo
    assert not (project / "site").exists()


@pytest.mark.parametrize("spelled", ["absolute", "relative"])
def test_cli_refuses_an_out_folder_under_a_file(project: Path, spelled: str) -> None:
    """``/dev/null/site`` cannot be made: one plain error naming it as typed, or absolute."""
    target = "/dev/null/site"
    out = target if spelled == "absolute" else os.path.relpath(target, project)
    assert spelled == "absolute" or out.startswith("../")

    run = run_dispatch(project, "archive", "--out", out)

    assert run.returncode != 0
    assert "internal error" not in run.stdout + run.stderr and "Traceback" not in run.stderr
    lines = run.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), run.stderr
    assert f"{target}:" in lines[0] and "../" not in lines[0], lines[0]
    assert sorted(p.name for p in project.iterdir()) == ["dispatch.yaml", "issues"]


def test_cli_reports_manifest_errors_and_writes_nothing(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    edit(project / "issues/2025-q4/issue.yaml", "date: 2025-10-15", "date: someday")
    monkeypatch.chdir(project)
    out = tmp_path / "public"

    result = CliRunner().invoke(main, ["archive", "--out", str(out)])

    assert result.exit_code == 1
    assert "2025-q4" in result.output and "nothing was written" in result.output
    assert not out.exists()
