"""`dispatch archive`: the web archive — a page per issue, an index newest first, an Atom feed.

The emails already link to ``<base_url><slug>/`` ("View this issue in your
browser") and to ``<base_url>`` (the footer's archive link), so the layout is
fixed: ``OUT/index.html``, ``OUT/<slug>/index.html`` and ``OUT/feed.xml``, and each
event's ``OUT/<slug>/events/<n>-<title>.ics``, where the email's "Add to
calendar" links point.

Links between the site's pages are relative and name ``index.html``, so the
same folder works opened from disk and served under ``base_url``; each page
names its public URL as canonical. The feed carries absolute URLs, since feed
readers copy entries out of their context.

The whole site is built in a folder beside OUT and swapped in at the end: an
issue that fails leaves the previous site as it was. Which folders may be
replaced, and how, is ``sitefolder``'s business; which issue folder names can
be pages, ``slugs``'.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import date
from html import escape
from pathlib import Path
from urllib.parse import quote

from dispatch_mail.errors import ContentError, RenderError
from dispatch_mail.project.issue import Issue
from dispatch_mail.project.loader import find_project_root, issue_dirs, load, load_project
from dispatch_mail.project.paths import shown_path, site_dir
from dispatch_mail.project.settings import Project
from dispatch_mail.publish.sitefolder import (
    FEED_NAME,
    INDEX_NAME,
    MARKER_NAME,
    marker_text,
    replace_folder,
    site_folder,
)
from dispatch_mail.publish.slugs import archive_slug_problems, slug_problems
from dispatch_mail.render import render_issue
from dispatch_mail.render.calendar import calendar_files
from dispatch_mail.render.templates import render
from dispatch_mail.version import __version__

__all__ = ["FEED_NAME", "INDEX_NAME", "MARKER_NAME", "ArchiveResult", "build_archive"]

SUMMARY_LENGTH = 300
ATOM_NS = "http://www.w3.org/2005/Atom"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
# Characters XML 1.0 forbids outright; a stray one would make the whole feed unreadable.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_HEAD = re.compile(r"<head\b[^>]*>", re.IGNORECASE)
_HEAD_END = re.compile(r"</head\s*>", re.IGNORECASE)
_BODY = re.compile(r"<body\b[^>]*>", re.IGNORECASE)


@dataclass
class ArchiveResult:
    """What `dispatch archive` wrote; ``pages`` are the issue pages, newest first."""

    out_dir: Path
    pages: list[Path]
    feed: Path
    warnings: list[str] = field(default_factory=list)

    @property
    def index(self) -> Path:
        return self.out_dir / INDEX_NAME


@dataclass(frozen=True)
class _Entry:
    """One issue as the archive shows it."""

    issue: Issue
    web_html: str  # the web version exactly as rendered: the feed's content
    summary: str

    @property
    def slug(self) -> str:
        return self.issue.slug

    @property
    def href(self) -> str:
        """The slug as a relative link: 'été 2026' or 'a#b' must not break the URL."""
        return quote(self.slug, safe="")

    @property
    def updated(self) -> str:
        return _atom_time(self.issue.date)


def build_archive(project_dir: Path, out_dir: Path | None = None) -> ArchiveResult:
    """Render every issue, then write the site into ``out_dir`` (default: ``site/`` beside
    dispatch.yaml).

    Raises :class:`ContentError` with the problems of every issue at once, before anything
    is written, and :class:`WriteError` when the site cannot be written; either way the
    previous site is left as it was.
    """
    root = find_project_root(Path(project_dir))
    project = load_project(root)
    out = site_folder(Path(out_dir) if out_dir is not None else site_dir(project), root.resolve())

    entries = _render_entries(project)
    warnings = _warnings(project, entries)
    site: dict[Path, str | bytes] = {}  # path inside the site -> content
    for entry in entries:
        page, missing = issue_page(project, entry.issue, entry.web_html)
        if missing:
            warnings.append(f"{entry.slug}: the rendered HTML has no {missing} on its archive page")
        site[Path(entry.slug, INDEX_NAME)] = page
        for name, data in calendar_files(project, entry.issue).items():
            site[Path(entry.slug, name)] = data
    site[Path(INDEX_NAME)] = index_page(project, entries)
    site[Path(FEED_NAME)] = atom_feed(project, entries)
    site[Path(MARKER_NAME)] = marker_text(out)

    replace_folder(site, out)
    return ArchiveResult(
        out_dir=out,
        pages=[out / e.slug / INDEX_NAME for e in entries],
        feed=out / FEED_NAME,
        warnings=warnings,
    )


# ------------------------------------------------------------------ loading and rendering
def _render_entries(project: Project) -> list[_Entry]:
    """Every issue loaded (all problems collected, then one error) and rendered, newest first."""
    issues: list[Issue] = []
    folders = issue_dirs(project)
    problems = archive_slug_problems(folders, reserved=(INDEX_NAME, FEED_NAME, MARKER_NAME))
    for folder in folders:
        problems.extend(slug_problems(folder))
        try:
            issues.append(load(folder)[1])
        except ContentError as exc:
            problems.extend(exc.problems)
    if problems:
        raise ContentError(problems)
    issues.sort(key=lambda i: (i.date, i.slug), reverse=True)
    entries = []
    for issue in issues:
        try:
            html = render_issue(project, issue).html  # personal=False: the web version
        except RenderError as exc:
            raise RenderError(f"{issue.slug}: {exc}") from None
        entries.append(_Entry(issue, html, summary_of(issue)))
    return entries


def summary_of(issue: Issue) -> str:
    """The preheader, else the first words of the issue (the dek, the intro, the headline)."""
    for text in (
        issue.preheader,
        issue.masthead.dek.plain if issue.masthead.dek else None,
        issue.intro.plain if issue.intro else None,
        issue.masthead.headline,
    ):
        text = " ".join((text or "").split())
        if text:
            return _shorten(text, SUMMARY_LENGTH)
    return ""


def _shorten(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rsplit(" ", 1)[0].rstrip(" ,;:.–—-")
    return f"{cut}…"


def _warnings(project: Project, entries: list[_Entry]) -> list[str]:
    warnings = []
    if not project.base_url:
        warnings.append(
            "no base_url in dispatch.yaml: the feed's ids are tag: URIs and its links relative; "
            "set base_url before publishing, since changing the ids later makes readers "
            "show every issue again"
        )
    if not entries:
        warnings.append(
            f"no issues in {shown_path(project.root / project.issues)}: the archive is empty"
        )
    today = date.today()
    for entry in entries:
        if entry.issue.date > today:
            warnings.append(
                f"{entry.slug} is dated {entry.issue.date.isoformat()}, in the future, "
                "and is in the archive"
            )
    return warnings


# ------------------------------------------------------------------ pages
def issue_page(project: Project, issue: Issue, web_html: str) -> tuple[str, str | None]:
    """The web version with a charset, the feed link, a canonical URL and a link back to the index.

    Everything is inserted next to the ``<head>`` and ``<body>`` tags, leaving the
    email's own markup (tables, conditional comments, inlined styles) untouched.
    Returns the page and the name of a tag that was missing, if any.
    """
    colors, fonts = project.brand.colors, project.brand.fonts
    head = [
        # The email declares its charset inside an Outlook conditional comment; from disk,
        # without a server's Content-Type, the browser must find one near the top.
        '<meta charset="utf-8">',
    ]
    links = [
        f'<link rel="alternate" type="application/atom+xml" title="{escape(project.name)}" '
        f'href="../{FEED_NAME}">'
    ]
    web_url = project.web_url(issue.slug)
    if web_url:
        links.append(f'<link rel="canonical" href="{escape(web_url)}">')
    nav = (
        f'<div class="dm-archive-nav" style="max-width:600px;margin:0 auto;padding:12px 16px 0;'
        f'font-family:{escape(fonts.body)};font-size:13px;line-height:1.6;">'
        f'<a class="dm-link" href="../{INDEX_NAME}" style="color:{colors.primary};">'
        "← All issues</a></div>"
    )
    page, missing = web_html, None
    for pattern, insert, after, name in (
        (_HEAD, "".join(head), True, "<head> tag: no charset"),
        (_HEAD_END, "".join(links), False, "</head> tag: no feed link"),
        (_BODY, nav, True, "<body> tag: no link to the index"),
    ):
        match = pattern.search(page)
        if match is None:
            missing = missing or name
            continue
        at = match.end() if after else match.start()
        page = page[:at] + insert + page[at:]
    return page, missing


def index_page(project: Project, entries: list[_Entry]) -> str:
    """The archive's front page, from the theme's ``archive_index.html.j2`` (overridable)."""
    from dispatch_mail.render.strings import Strings, format_issue_date, text_direction

    context = {
        "project": project,
        "lang": project.lang,
        "dir": text_direction(project.lang),
        "t": Strings(project.lang, project.strings),
        "feed_href": FEED_NAME,
        "canonical_url": project.archive_url,
        "entries": [
            {
                "href": f"{e.href}/{INDEX_NAME}",
                "title": e.issue.subject,
                "date": e.issue.date,
                "date_text": format_issue_date(e.issue.date, e.issue.lang or project.lang, "day")
                if (e.issue.lang or project.lang) != "en"
                else f"{e.issue.date.day} {e.issue.date:%B %Y}",
                "summary": e.summary,
            }
            for e in entries
        ],
    }
    return render("archive_index.html.j2", context, project.root / project.templates)


# ------------------------------------------------------------------ feed
def atom_feed(project: Project, entries: list[_Entry]) -> bytes:
    """An RFC 4287 feed; ElementTree does the escaping, so no text can break the XML."""
    archive_url = project.archive_url
    feed = ET.Element("feed", {"xmlns": ATOM_NS, XML_LANG: project.lang})
    _text(
        feed,
        "id",
        archive_url or _tag_uri(project, entries[-1].issue.date if entries else date.today()),
    )
    _text(feed, "title", project.name)
    _text(feed, "updated", entries[0].updated if entries else _atom_time(date.today()))
    ET.SubElement(
        feed,
        "link",
        rel="self",
        type="application/atom+xml",
        href=f"{archive_url or ''}{FEED_NAME}",
    )
    ET.SubElement(feed, "link", rel="alternate", type="text/html", href=archive_url or "./")
    author = ET.SubElement(feed, "author")
    _text(author, "name", project.sender.name)
    _text(feed, "generator", "dispatch", version=__version__)
    for entry in entries:
        issue = entry.issue
        web_url = project.web_url(issue.slug)
        item = ET.SubElement(feed, "entry")
        if issue.lang and issue.lang != project.lang:
            item.set(XML_LANG, issue.lang)
        _text(item, "id", web_url or _tag_uri(project, issue.date, entry.href))
        _text(item, "title", issue.subject)
        _text(item, "published", entry.updated)
        _text(item, "updated", entry.updated)
        ET.SubElement(
            item, "link", rel="alternate", type="text/html", href=web_url or f"{entry.href}/"
        )
        if entry.summary:
            _text(item, "summary", entry.summary)
        _text(item, "content", entry.web_html, type="html")
    ET.indent(feed)
    xml: bytes = ET.tostring(feed, encoding="utf-8", xml_declaration=True)
    return xml + b"\n"


def _text(parent: ET.Element, tag: str, text: str, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attrs)
    element.text = _NOT_XML.sub("", text)
    return element


def _atom_time(day: date) -> str:
    """An issue goes out on its date: midnight UTC stands for the day (RFC 3339 needs a time)."""
    return f"{day.isoformat()}T00:00:00Z"


def _tag_uri(project: Project, day: date, slug: str = "") -> str:
    """An RFC 4151 id for a feed with no URL: the sender's domain, a date it owned it, a name."""
    domain = project.sender.domain.lower()
    name = re.sub(r"[^a-z0-9]+", "-", project.name.lower()).strip("-") or "newsletter"
    return f"tag:{domain},{day.isoformat()}:{name}" + (f"/{slug}" if slug else "")
