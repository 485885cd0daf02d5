"""Rendering: the Q1 issue built in process and read back with html.parser, and hostile content.

The HTML is checked the way a mail client and a screen reader meet it: links,
images, headings, layout tables, size. The plaintext part is checked for line
width, unbroken URLs and order, and compared with a golden file
(``DISPATCH_UPDATE_GOLDEN=1 pytest tests/test_render.py`` rewrites it).
"""

from __future__ import annotations

import itertools
import os
import re
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest
import yaml

from dispatch_mail.errors import ContentError, RenderError
from dispatch_mail.publish.build import BuildResult, build_issue
from dispatch_mail.quality.budget import GMAIL_CLIP_BYTES
from tests.helpers.html import Page
from tests.helpers.plaintext import long_lines
from tests.helpers.project import PROJECT_YAML

REPO = Path(__file__).resolve().parent.parent
Q1 = REPO / "issues" / "2026-q1"
GOLDEN = Path(__file__).resolve().parent / "golden" / "2026-q1.txt"
UTM = {"utm_source": "dpdk-dispatch", "utm_medium": "email", "utm_campaign": "2026-q1"}
URL_LINE = re.compile(r"\s*(?:\[\d+\] )?(?:https?|mailto):\S+")


def untracked(url: str) -> str:
    """The URL without utm_* parameters (what the manifest said)."""
    parts = urlsplit(url)
    query = [
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if not k.startswith("utm_")
    ]
    return urlunsplit(parts._replace(query=urlencode(query)))


def manifest_items(path: Path) -> list[dict]:
    """Every titled, linked item of a manifest in order, read by plain PyYAML (not our loader)."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    items: list[dict] = []
    for section in data["sections"]:
        if section["kind"] == "featured":
            items.append(
                {"title": section["title"], "url": section.get("url") or section["action"]["url"]}
            )
        elif section["kind"] in ("stories", "reading_list", "roundup"):
            items += section.get("items", [])
            for group in section.get("groups", []):
                items += group["items"]
    return items


def words(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture(scope="module")
def q1() -> BuildResult:
    return build_issue(Q1, write=False)


@pytest.fixture(scope="module")
def page(q1: BuildResult) -> Page:
    return Page(q1.rendered.html)


# ------------------------------------------------------------------ the HTML part of Q1
def test_every_item_title_and_url_of_the_manifest_is_in_the_html(q1, page):
    items = manifest_items(Q1 / "issue.yaml")
    assert len(items) == 1 + 4 + 5 + 7 + 2
    hrefs = {untracked(a["href"] or "") for a in page.all("a")}
    for item in items:
        assert words(item["title"]) in page.text
        assert item["url"] in hrefs, f"no link to {item['url']}"


def test_every_outbound_link_carries_the_utm_parameters(q1, page):
    footer = q1.project.footer
    ours = {
        q1.project.web_url(q1.issue.slug),
        footer.preferences_url,
        footer.unsubscribe_url.replace("{token}", ""),
    }
    outbound = [
        a["href"]
        for a in page.all("a")
        if a["href"] and a["href"].startswith("http") and a["href"] not in ours
    ]
    assert len(outbound) >= 20
    for href in outbound:
        query = dict(parse_qsl(urlsplit(href).query))
        assert {k: query.get(k) for k in UTM} == UTM, href


def test_every_image_has_alt_text(page):
    images = page.all("img")
    assert images, "the logo at least"
    for img in images:
        assert img.get("alt"), img


def test_the_document_head(q1, page):
    (html,) = page.all("html")
    assert html["lang"] == "en"
    assert page.title == "DPDK Dispatch Q1 2026"
    metas = {m.get("name"): m.get("content") for m in page.all("meta")}
    assert metas["color-scheme"] == "light dark"
    assert q1.issue.preheader and words(q1.issue.preheader) in page.text


def test_the_preheader_comes_before_the_visible_text(q1, page):
    text = page.text
    assert text.index(words(q1.issue.preheader or "")) < text.index("Fifteen years in")


def test_layout_tables_are_presentational(page):
    tables = page.all("table")
    assert len(tables) > 10
    assert [t for t in tables if t.get("role") != "presentation"] == []


def test_the_html_stays_under_gmails_clipping_size(q1):
    assert len(q1.rendered.html.encode("utf-8")) < GMAIL_CLIP_BYTES == 102 * 1024


def assert_heading_outline(headings: list[tuple[int, str]]) -> None:
    """One h1 first; after it, each heading at most one level deeper than the one before."""
    levels = [level for level, _ in headings]
    assert levels[0] == 1 and levels.count(1) == 1, headings
    for (before, _), (level, text) in itertools.pairwise(headings):
        assert level <= before + 1, f"h{before} then h{level} ({text!r}) skips a level: {headings}"


def test_headings_are_in_order(page):
    assert page.headings[0] == (
        1,
        "Fifteen years in,and the work keeps getting better",
    )  # a <br> between the lines
    assert_heading_outline(page.headings)
    assert [text for level, text in page.headings if level == 2][:2] == [
        "What to Watch at DPDK Summit 2026: Routers, Offloads, Verification, and Real-World DPDK",
        "Community & Project",
    ]


# ------------------------------------------------------------------ the plaintext part of Q1
def test_plaintext_lines_fit_in_72_columns_unless_they_are_one_url(q1):
    long = [
        line
        for line in q1.rendered.text.splitlines()
        if len(line) > 72 and not URL_LINE.fullmatch(line)
    ]
    assert long == []


def test_plaintext_urls_are_never_broken(q1):
    text = q1.rendered.text
    lines = {line.strip() for line in text.splitlines()}
    for item in manifest_items(Q1 / "issue.yaml"):
        url = item["url"] + ("&" if "?" in item["url"] else "?") + urlencode(UTM)
        assert url in lines, f"{url} is not on a line of its own"
    for url in re.findall(r"https?://\S+", text):
        if url.startswith(q1.project.base_url or "-"):
            continue  # the web version, the archive, preferences: ours, untagged
        assert dict(parse_qsl(urlsplit(url).query)).get("utm_campaign") == "2026-q1", (
            f"cut short: {url}"
        )


def test_plaintext_has_every_item_title_in_manifest_order(q1):
    text = words(q1.rendered.text)
    position = 0
    for item in manifest_items(Q1 / "issue.yaml"):
        found = text.find(words(item["title"]), position)
        assert found >= 0, f"{item['title']!r} missing or out of order"
        position = found


def test_plaintext_matches_the_golden_file(q1):
    if os.environ.get("DISPATCH_UPDATE_GOLDEN") == "1":
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(q1.rendered.text, encoding="utf-8", newline="\n")
    assert q1.rendered.text == GOLDEN.read_text(encoding="utf-8"), (
        "the plaintext changed; if on purpose: DISPATCH_UPDATE_GOLDEN=1 pytest tests/test_render.py"
    )


# ------------------------------------------------------------------ every example renders well too
OTHER_ISSUES = [
    "issues/2025-q4",
    "examples/minimal",
    "examples/all-sections",
    "examples/weekly-links/issues/issue-212",
    "examples/campus-bulletin/issues/2027-01-11",
    "examples/bilingual-rtl/issues/2027-05-issue-14",
]


@pytest.fixture(scope="module", params=OTHER_ISSUES)
def other(request) -> BuildResult:
    return build_issue(REPO / request.param, write=False)


def test_the_other_issues_have_a_sound_outline(other):
    page = Page(other.rendered.html)
    assert_heading_outline(page.headings)
    assert all(img.get("alt") for img in page.all("img"))
    # layout tables are presentational; a Markdown table is data and keeps its headers
    assert all(
        t.get("role") == "presentation" or t.get("class") == "md-table" for t in page.all("table")
    )
    assert len(other.rendered.html.encode("utf-8")) < GMAIL_CLIP_BYTES


def test_the_other_issues_plaintext_fits_in_72_columns(other):
    # display columns (CJK counts two, Arabic vowel signs none); URLs and code lines may overflow
    assert long_lines(other.rendered.text, other.issue) == []


def test_a_heading_in_the_intro_does_not_skip_a_level(write_project):
    folder = write_project("""\
        subject: Test issue
        name: Issue 1
        date: 2026-01-08
        masthead:
          headline: Hello
        intro: |
          ### Before you start

          Some text.
        sections:
          - kind: announcements
            heading: News
            items: [Something happened.]
        """)
    assert_heading_outline(Page(build_issue(folder, write=False).rendered.html).headings)


# ------------------------------------------------------------------ the project's own templates
FOOTER_OVERRIDE = """\
<mj-section css-class="dm-page">
  <mj-column>
    <mj-text>Custom footer of {{ project.name }} &middot; <a
      href="{{ merge.unsubscribe_url }}">Unsubscribe</a></mj-text>
  </mj-column>
</mj-section>
"""


def test_a_template_in_the_projects_folder_overrides_the_theme(write_project):
    folder = write_project(
        templates={
            "footer.mjml.j2": FOOTER_OVERRIDE,
            "footer.txt.j2": "-- custom text footer of {{ project.name }}\n",
        }
    )
    result = build_issue(folder, write=False)
    assert "Custom footer of Test News · Unsubscribe" in Page(result.rendered.html).text
    assert "1 Test Street" not in result.rendered.html, "the theme's footer is gone"
    assert result.rendered.text.endswith("-- custom text footer of Test News\n")


def test_the_templates_setting_names_the_override_folder(write_project, tmp_path):
    folder = write_project(config=PROJECT_YAML + "templates: my-theme\n")
    (tmp_path / "my-theme").mkdir()
    (tmp_path / "my-theme" / "footer.mjml.j2").write_text(FOOTER_OVERRIDE)
    assert "Custom footer of Test News" in build_issue(folder, write=False).rendered.html


@pytest.mark.parametrize("target", ["../../etc/passwd", "/etc/passwd", "../dispatch.yaml"])
def test_an_override_cannot_include_files_outside_the_template_folders(write_project, target):
    folder = write_project(templates={"footer.mjml.j2": f'{{% include "{target}" %}}\n'})
    with pytest.raises(RenderError) as caught:
        build_issue(folder, write=False)
    assert "template not found" in str(caught.value) and target in str(caught.value)
    assert "root:" not in str(caught.value)


def test_a_template_syntax_error_names_the_file_and_line(write_project):
    folder = write_project(templates={"footer.mjml.j2": "<mj-section>\n{% if %}\n</mj-section>\n"})
    with pytest.raises(RenderError) as caught:
        build_issue(folder, write=False)
    message = str(caught.value)
    assert message.endswith(
        "footer.mjml.j2:2: template syntax error: "
        "Expected an expression, got 'end of statement block'"
    )


def test_an_undefined_variable_in_an_override_names_the_file_and_line(write_project):
    folder = write_project(
        templates={
            "footer.mjml.j2": "<mj-section><mj-column><mj-text>\n{{ project.nmae }}\n"
            "</mj-text></mj-column></mj-section>\n"
        }
    )
    with pytest.raises(RenderError) as caught:
        build_issue(folder, write=False)
    assert re.search(r"footer\.mjml\.j2:2: .*nmae", str(caught.value)), str(caught.value)


def test_an_override_that_produces_invalid_mjml_is_a_render_error(write_project):
    folder = write_project(
        templates={"footer.mjml.j2": "<mj-section><mj-column><mj-text>unclosed\n"}
    )
    with pytest.raises(RenderError, match="the MJML engine rejected the rendered template"):
        build_issue(folder, write=False)


# ------------------------------------------------------------------ hostile text in the manifest
NASTY = """<zz> & "q" 'a' {{ 7*7 }} {% if %}"""


def nasty_project() -> tuple[str, str]:
    """A project and an issue using every section kind, with NASTY in every text field."""
    n = NASTY
    image = {
        "url": "https://img.example.org/a.png?x=1&y='2'",
        "alt": n,
        "width": 300,
        "link": "https://example.org/?a=1&b='2'",
    }
    quote = {"text": n, "by": n}
    issue = {
        "subject": n,
        "preheader": n,
        "name": n,
        "date": "2026-01-08",
        "greeting": n,
        "masthead": {"eyebrow": n, "headline": f"{n}\n{n}", "dek": n, "image": image},
        "intro": f'{n}\n\n### {n}\n\n- {n}\n1. {n}\n\n> {n}\n\n[{n}](https://example.org/?q="x"&r=<y>)',
        "sections": [
            {
                "kind": "featured",
                "heading": n,
                "intro": n,
                "label": n,
                "meta": n,
                "title": n,
                "summary": n,
                "quote": quote,
                "body": n,
                "url": "https://example.org/feat?a=1&b=2",
                "action": {"label": n, "url": "https://example.org/act"},
                "image": image,
                "stat": n,
            },
            {
                "kind": "stories",
                "heading": n,
                "items": [
                    {
                        "kicker": n,
                        "title": n,
                        "url": "https://example.org/s?a=<b>",
                        "summary": n,
                        "quote": quote,
                        "link_label": n,
                        "image": image,
                    }
                ],
            },
            {
                "kind": "reading_list",
                "heading": n,
                "intro": n,
                "items": [{"title": n, "url": "https://example.org/r", "note": n, "via": n}],
            },
            {
                "kind": "roundup",
                "heading": n,
                "region": n,
                "language_note": n,
                "intro": n,
                "items": [{"title": n, "url": "https://example.org/ro", "note": n, "orgs": [n, n]}],
                "groups": [{"heading": n, "items": [{"title": n, "url": "https://example.org/g"}]}],
            },
            {"kind": "announcements", "heading": n, "items": [n, f"[{n}](https://example.org/an)"]},
            {
                "kind": "links",
                "heading": n,
                "items": [
                    {
                        "title": n,
                        "text": n,
                        "url": 'mailto:a@example.org?subject=<x>&body="y"',
                        "label": n,
                    }
                ],
            },
            {"kind": "markdown", "heading": n, "body": f"{n}\n\n- {n}"},
            {
                "kind": "cta",
                "heading": n,
                "intro": n,
                "text": n,
                "button": {"label": n, "url": "https://example.org/cta"},
            },
        ],
    }
    project = {
        "name": n,
        "base_url": "https://example.org/news/",
        "sender": {"name": n, "address": "news@example.org"},
        "footer": {
            "organisation": n,
            "postal_address": n,
            "text": n,
            "unsubscribe_url": "https://example.org/u?t={token}&x=<y>",
            "links": [{"label": n, "url": "https://example.org/?l=1&m='2'"}],
        },
        "brand": {"logo": {"url": "https://img.example.org/logo.png", "alt": n}},
    }
    return _dump(project), _dump(issue)


class _NoAliases(yaml.SafeDumper):
    def ignore_aliases(self, data: object) -> bool:
        return True  # shared dicts written out in full: dispatch refuses aliases


def _dump(data: dict) -> str:
    return yaml.dump(data, Dumper=_NoAliases, allow_unicode=True, sort_keys=False)


def test_hostile_text_in_every_field_renders_escaped(write_project):
    config, issue = nasty_project()
    result = build_issue(write_project(issue.encode(), config.encode()), write=False)
    page = Page(result.rendered.html)
    assert [name for name, _ in page.tags if name == "zz"] == [], "content became markup"
    assert page.title == NASTY
    assert page.text.count(NASTY) >= 40
    assert all(img["alt"] == NASTY for img in page.all("img"))
    assert "49" not in page.text and "49" not in result.rendered.text
    assert result.rendered.text.count(NASTY) >= 40, "plaintext is not escaped"
    hrefs = {a["href"] for a in page.all("a")}
    assert {
        # a Markdown link's URL is percent-encoded by the CommonMark parser; a URL field's is kept
        "https://example.org/?q=%22x%22&r=%3Cy%3E",
        'mailto:a@example.org?subject=<x>&body="y"',
        "https://example.org/s?a=<b>",
    } <= hrefs


def test_template_syntax_in_the_manifest_is_printed_literally(write_project):
    folder = write_project("""\
        subject: "Sum: {{ 7*7 }}"
        name: Issue 1
        date: 2026-01-08
        masthead:
          headline: "{% if true %}shown{% endif %} {{ 7*7 }}"
        sections:
          - kind: announcements
            items: ["{{ 7*7 }} {% if %} {# comment #} {{ project.name }}"]
        """)
    result = build_issue(folder, write=False)
    page = Page(result.rendered.html)
    assert page.title == "Sum: {{ 7*7 }}"
    assert "{% if true %}shown{% endif %} {{ 7*7 }}" in page.text
    assert "{{ 7*7 }} {% if %} {# comment #} {{ project.name }}" in page.text
    assert "49" not in page.text and "49" not in result.rendered.text
    assert "{{ 7*7 }} {% if %} {# comment #} {{ project.name }}" in result.rendered.text


def test_a_broken_manifest_is_a_content_error_before_rendering(write_project):
    with pytest.raises(ContentError):
        build_issue(write_project("subject: [\n"), write=False)


@pytest.mark.parametrize(
    "text",
    ["I ❤️ DPDK", "Cafe\u0301 in NFD", "C:\\dpdk\\build", "zero\u200bwidth", "👩‍💻 at work"],
    ids=[
        "emoji-variation-selector",
        "combining-accent",
        "backslash",
        "zero-width-space",
        "emoji-zwj",
    ],
)
def test_attribute_text_survives_the_mjml_engine(write_project, text):
    # MRML writes attribute values with Rust's escape_debug: "❤️" became "❤\u{fe0f}", "\" became "\\"
    folder = write_project(f"""\
        subject: Test issue
        name: Issue 1
        date: 2026-01-08
        masthead:
          headline: Hello
          image:
            url: https://img.example.org/a.png
            alt: "{text.replace(chr(92), chr(92) * 2)}"
        sections:
          - kind: stories
            items:
              - title: "{text.replace(chr(92), chr(92) * 2)}"
                url: https://example.org/story
                summary: A story.
        """)
    page = Page(build_issue(folder, write=False).rendered.html)
    assert [img["alt"] for img in page.all("img")] == [text]
    labels = [a["aria-label"] for a in page.all("a") if a.get("aria-label")]
    assert labels == [f"Read the full story: {text}"]


COMMENT_ISSUE = """\
    subject: "{subject}"
    name: Issue 1
    date: 2026-01-08
    masthead:
      headline: Hello
    sections:
      - kind: stories
        items:
          - title: "{title}"
            url: https://example.org/story
            summary: The summary that must reach the reader.
            image:
              url: https://img.example.org/a.png
              alt: "{alt}"
      - kind: cta
        text: The closing paragraph.
    """


@pytest.mark.parametrize("field", ["subject", "title", "alt"])
def test_comment_markers_in_text_do_not_eat_the_email(write_project, field):
    # css-inline writes "<" unescaped in attribute values; minify() then took "<!--" in an
    # attribute (alt, aria-label) for a comment and cut everything up to the next "-->"
    plain = {"subject": "Subject", "title": "Title", "alt": "Alt"}
    normal = Page(
        build_issue(write_project(COMMENT_ISSUE.format(**plain)), write=False).rendered.html
    )
    hostile = {**plain, field: "Before <!-- after"}
    page = Page(
        build_issue(write_project(COMMENT_ISSUE.format(**hostile)), write=False).rendered.html
    )
    assert [name for name, _ in page.tags] == [name for name, _ in normal.tags]
    assert "The summary that must reach the reader." in page.text
    assert "The closing paragraph." in page.text
    if field == "alt":
        assert [img["alt"] for img in page.all("img")] == ["Before <!-- after"]
