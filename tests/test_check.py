"""`dispatch check`: every check has a project that fails it and the shipped issues pass it."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner

from dispatch_mail.cli import main
from dispatch_mail.project.loader import load
from dispatch_mail.quality.checks import check_issue
from dispatch_mail.quality.clients import used_features
from dispatch_mail.quality.contrast import contrast_ratio
from dispatch_mail.quality.facts import html_facts
from dispatch_mail.render.templates import THEME_DIR
from tests.helpers.http_server import Reply
from tests.helpers.project import REPO_CONFIG, create_project

ROOT = Path(__file__).resolve().parent.parent
MINIMAL = """\
subject: Example Weekly 42
name: Issue 42
date: 2026-04-01
preheader: Three releases, one summit and a call for talks this week.
masthead:
  eyebrow: Example Weekly · Issue 42
  headline: A quiet week
sections:
  - kind: stories
    heading: Stories
    items:
      - title: The first story
        url: https://example.org/first
        summary: What happened first.
  - kind: announcements
    heading: News
    items:
      - Release 2.0 is out.
"""


def make_project(
    tmp_path: Path,
    manifest: str = MINIMAL,
    config_edits: dict[str, str] | None = None,
    templates: dict[str, str] | None = None,
) -> Path:
    """The repository's dispatch.yaml with edits, one issue, and optional template overrides."""
    create_project(
        tmp_path,
        config=REPO_CONFIG,
        config_edits=config_edits,
        issues={"2026-04": manifest},
        templates=templates,
    )
    return tmp_path / "issues" / "2026-04"


def codes(report, level: str | None = None) -> set[str]:
    return {f.code for f in report.findings if level is None or f.level == level}


def theme(name: str) -> str:
    return (THEME_DIR / name).read_text(encoding="utf-8")


# ------------------------------------------------------------------ the passing side
@pytest.mark.parametrize("issue", ["issues/2026-q1", "examples/all-sections"])
def test_shipped_issues_have_no_errors_or_warnings(issue):
    report = check_issue(ROOT / issue)
    assert [str(f) for f in report.findings if f.level != "note"] == []
    assert report.stats["html_bytes"] < 102 * 1024
    assert len(report.stats["sections"]) == len(load(ROOT / issue)[1].sections)


def test_minimal_project_passes(tmp_path):
    report = check_issue(make_project(tmp_path))
    assert codes(report, "error") == set() and codes(report, "warning") == set()


# ------------------------------------------------------------------ one failing project per check
def test_invalid_manifest_is_reported_not_raised(tmp_path):
    report = check_issue(make_project(tmp_path, MINIMAL.replace("kind: stories", "kind: storys")))
    assert codes(report) == {"manifest.invalid"}
    assert "did you mean 'stories'" in report.findings[0].message
    assert report.failed()


def test_size_over_gmail_clip(tmp_path):
    big_items = "".join(
        f"      - title: Story number {i} with a long enough title\n"
        f"        url: https://example.org/s{i}\n"
        f"        summary: {'Words that take room in the HTML part of the message. ' * 40}\n"
        for i in range(40)
    )
    manifest = MINIMAL.replace(
        "      - title: The first story\n        url: https://example.org/first\n"
        "        summary: What happened first.\n",
        big_items,
    )
    report = check_issue(make_project(tmp_path, manifest))
    assert "size.gmail-clip" in codes(report, "error")
    heaviest = max(report.stats["sections"], key=lambda s: s["bytes"])
    assert heaviest["section"].startswith("sections[0] stories")


def test_images_without_alt_width_or_https(tmp_path):
    override = theme("footer.mjml.j2").replace(
        '<p style="margin:0;">{{ ft.postal_address }}</p>',
        '<p style="margin:0;">{{ ft.postal_address }}</p><img src="http://example.org/pixel.gif">',
    )
    report = check_issue(make_project(tmp_path, templates={"footer.mjml.j2": override}))
    assert {"image.alt", "image.width", "image.https"} <= codes(report, "error")


def test_vague_link_text_bare_url_and_doubled_utm(tmp_path):
    manifest = MINIMAL.replace(
        "summary: What happened first.",
        'summary: "Details [click here](https://example.org/a), '
        "[https://example.org/b](https://example.org/b), "
        '[tagged](https://example.org/c?utm_source=x&utm_source=y)."',
    )
    report = check_issue(make_project(tmp_path, manifest))
    assert "link.text-vague" in codes(report, "warning")
    assert "link.text-url" in codes(report, "warning")
    assert "link.utm-doubled" in codes(report, "error")


def test_links_the_project_url_rule_refuses_are_errors(tmp_path):
    # the manifest's own links are refused when the project loads; a template can still carry one
    override = theme("footer.mjml.j2").replace(
        '<p style="margin:0;">{{ ft.postal_address }}</p>',
        '<p style="margin:0;">{{ ft.postal_address }}</p>'
        '<a href="javascript:alert(1)">Home</a> <a href="https://">Archive</a>'
        ' <a href="#top">Top</a>',
    )
    report = check_issue(make_project(tmp_path, templates={"footer.mjml.j2": override}))
    refused = [f.message for f in report.findings if f.code == "link.scheme"]
    assert refused == [
        "link 'javascript:alert(1)' is not an absolute http(s) or mailto URL",
        "link 'https://' is not an absolute http(s) or mailto URL",
    ]


def test_subject_and_preheader(tmp_path):
    long_subject = "A subject line that goes on and on well past what any inbox shows in its list"
    manifest = MINIMAL.replace("subject: Example Weekly 42", f"subject: {long_subject}").replace(
        "preheader: Three releases, one summit and a call for talks this week.\n", ""
    )
    report = check_issue(make_project(tmp_path, manifest))
    assert {"subject.length", "preheader.missing"} <= codes(report, "warning")
    report = check_issue(
        make_project(
            tmp_path / "b",
            MINIMAL.replace(
                "preheader: Three releases, one summit and a call for talks this week.",
                "preheader: Too short",
            ),
        )
    )
    assert "preheader.short" in codes(report, "warning")


def test_plaintext_must_carry_every_item(tmp_path):
    override = theme("sections/stories.txt.j2").replace("{{ story.title | text | wrap }}", "")
    report = check_issue(make_project(tmp_path, templates={"sections/stories.txt.j2": override}))
    missing = [f for f in report.findings if f.code == "text.item-missing"]
    assert missing and missing[0].where == "sections[0].items[0].title"


def test_lang_headings_and_layout_tables(tmp_path):
    main_template = theme("email.mjml.j2").replace(
        '<mjml lang="{{ lang }}" dir="{{ dir }}">', "<mjml>"
    )
    stories = (
        theme("sections/stories.mjml.j2")
        .replace("<h{{ 3 if section.heading else 2 }} ", "<h4 ")
        .replace("</h{{ 3 if section.heading else 2 }}>", "</h4>")
    )
    footer = theme("footer.mjml.j2").replace(
        '<p style="margin:0;">{{ ft.postal_address }}</p>',
        '<p style="margin:0;">{{ ft.postal_address }}</p><table><tr><td>layout</td></tr></table>',
    )
    report = check_issue(
        make_project(
            tmp_path,
            templates={
                "email.mjml.j2": main_template,
                "sections/stories.mjml.j2": stories,
                "footer.mjml.j2": footer,
            },
        )
    )
    assert "a11y.lang" in codes(report, "error")
    assert {"a11y.heading-skip", "a11y.table-role"} <= codes(report, "warning")


def test_dark_mode_readiness(tmp_path):
    main_template = theme("email.mjml.j2").replace(
        '<meta name="color-scheme" content="light dark">', ""
    )
    report = check_issue(
        make_project(
            tmp_path,
            templates={"email.mjml.j2": main_template, "head.css.j2": "code { color: red; }"},
        )
    )
    assert {"dark.meta", "dark.styles"} <= codes(report, "warning")


def test_contrast_of_theme_colours(tmp_path):
    issue = make_project(tmp_path, config_edits={'    text: "#1f2328"': '    text: "#bbbbbb"'})
    report = check_issue(issue)
    contrast = [f for f in report.findings if f.code == "a11y.contrast"]
    assert len(contrast) == 1 and "body text (and images' alt text) on cards" in contrast[0].message


def test_contrast_ratio_matches_wcag_examples():
    assert contrast_ratio("#000000", "#ffffff") == pytest.approx(21.0)
    assert contrast_ratio("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)
    assert contrast_ratio("#fff", "#fff") == pytest.approx(1.0)


def test_footer_needs_postal_address_unsubscribe_and_one_click(tmp_path):
    footer = "<mj-section><mj-column><mj-text>Bye</mj-text></mj-column></mj-section>"
    text_footer = "Bye\n"
    issue = make_project(
        tmp_path,
        config_edits={"unsubscribe?t={token}": "unsubscribe"},
        templates={"footer.mjml.j2": footer, "footer.txt.j2": text_footer},
    )
    report = check_issue(issue)
    assert {
        "footer.postal-address",
        "footer.postal-address-text",
        "footer.unsubscribe",
        "footer.unsubscribe-text",
        "footer.one-click",
    } <= codes(report, "error")


def test_client_support_from_caniemail_data(tmp_path):
    head_css = theme("head.css.j2") + "\n.x { display: grid; position: absolute; }\n"
    report = check_issue(make_project(tmp_path, templates={"head.css.j2": head_css}))
    unsupported = [
        f for f in report.findings if f.code == "clients.unsupported" and f.level == "warning"
    ]
    titles = " ".join(f.message for f in unsupported)
    assert "position" in titles and "grid" in titles.lower()
    assert all(f.where.startswith("https://www.caniemail.com/") for f in unsupported)
    assert "caniemail" in report.stats["client_data"]


def test_used_features_reads_properties_at_rules_and_elements():
    facts = html_facts(
        "<html><head><style>@media (prefers-color-scheme: dark){a{color:red !important}}</style>"
        "</head>"
        '<body><div style="border-radius:4px">x</div></body></html>'
    )
    assert {
        "css-border-radius",
        "css-at-media",
        "css-at-media-prefers-color-scheme",
        "css-important",
        "css-color",
        "html-div",
        "html-body",
    } <= used_features(facts)


# ------------------------------------------------------------------ --links against a local server
def _link_reply(method: str, path: str) -> Reply:
    if path.startswith("/ok"):
        return Reply(200)
    if path.startswith("/moved"):
        return Reply(301, headers={"Location": "/ok"})
    if path.startswith("/nohead"):
        return Reply(405) if method == "HEAD" else Reply(200, b"fine")
    if path.startswith("/slow"):  # far past the timeout, which is far past a quick answer
        return Reply(200, delay=60)
    return Reply(404)


@pytest.fixture
def link_server(http_server):
    return http_server(_link_reply).url


def test_links_option_reports_broken_and_slow_links(tmp_path, link_server):
    manifest = MINIMAL.replace(
        "url: https://example.org/first",
        f"url: {link_server}/ok",
    ).replace(
        "      - Release 2.0 is out.",
        f'      - "[Gone]({link_server}/missing), [moved]({link_server}/moved), '
        f"[no head]({link_server}/nohead), "
        f'[slow]({link_server}/slow)"',
    )
    config = {
        "utm:\n  source: dpdk-dispatch": "utm:\n  enabled: false\n  source: dpdk-dispatch",
        "  links:\n    - label: dpdk.org\n      url: https://www.dpdk.org/\n"
        "    - label: Newsletter archive\n      url: https://www.dpdk.org/newsletter/\n": "",
        "base_url: https://www.dpdk.org/newsletter/": f"base_url: {link_server}/ok/",
        "preferences_url: https://www.dpdk.org/newsletter/preferences": (
            f"preferences_url: {link_server}/ok/prefs"
        ),
    }
    issue = make_project(tmp_path, manifest, config_edits=config)
    report = check_issue(issue, links=True, link_timeout=5)
    by_url = {f.where: f for f in report.findings if f.code.startswith("links.")}
    assert (
        by_url[f"{link_server}/missing"].code == "links.broken"
        and "404" in by_url[f"{link_server}/missing"].message
    )
    assert (
        by_url[f"{link_server}/slow"].code == "links.unreachable"
        and "timed out" in by_url[f"{link_server}/slow"].message
    )
    assert by_url[f"{link_server}/moved"].code == "links.redirect"
    assert f"{link_server}/nohead" not in by_url  # GET after 405 to HEAD answers
    assert f"{link_server}/ok" not in by_url


# ------------------------------------------------------------------ the command
def test_cli_formats_and_exit_codes(tmp_path):
    issue = make_project(
        tmp_path,
        MINIMAL.replace(
            "preheader: Three releases, one summit and a call for talks this week.\n", ""
        ),
    )
    runner = CliRunner()
    ok = runner.invoke(main, ["check", str(issue)])
    assert ok.exit_code == 0, ok.output
    assert "preheader.missing" in ok.output and "0 errors, 1 warning, " in ok.output
    strict = runner.invoke(main, ["check", str(issue), "--strict"])
    assert strict.exit_code == 1
    as_json = runner.invoke(main, ["check", str(issue), "--format", "json"])
    data = json.loads(as_json.output)
    assert data[0]["warnings"] == 1 and data[0]["findings"][0]["code"] == "preheader.missing"
    out = tmp_path / "report.xml"
    junit = runner.invoke(
        main, ["check", str(issue), "--format", "junit", "--strict", "--output", str(out)]
    )
    assert junit.exit_code == 1
    suite = ET.parse(out).getroot().find("testsuite")
    failures = [tc.get("name") for tc in suite.iter("testcase") if tc.find("failure") is not None]
    assert failures == ["preheader.missing"]


def test_cli_check_all_from_project_folder(monkeypatch):
    monkeypatch.chdir(ROOT)
    result = CliRunner().invoke(main, ["check", "--all"])
    assert result.exit_code == 0, result.output
    assert (
        "issues/2026-q1/issue.yaml" in result.output
        and "issues/2025-q4/issue.yaml" in result.output
    )


def test_cli_check_without_issue_is_a_usage_error():
    assert CliRunner().invoke(main, ["check"]).exit_code == 2


def test_check_judges_the_copy_it_is_given_and_writes_nothing(tmp_path):
    # The edited copy is what gets checked (its colour fails contrast), and a check only reads:
    # no build/ folder, no file added, changed or removed anywhere in the project.
    issue = make_project(tmp_path, config_edits={'    text: "#1f2328"': '    text: "#bbbbbb"'})

    def files() -> dict[str, bytes]:
        return {
            str(p.relative_to(tmp_path)): p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()
        }

    before = files()
    report = check_issue(issue, links=False)
    assert "a11y.contrast" in codes(report, "error")
    assert files() == before
    assert not (tmp_path / "build").exists()


MID_SENTENCE_LINKS = """\
subject: Links in mid-sentence
name: Issue 1
date: 2026-01-08
masthead:
  headline: Hello
sections:
  - kind: announcements
    heading: News
    items:
      - "The [release notes](https://example.org/notes) list every change, and the
        [migration guide](https://example.org/guide) says what to do."
      - "Join the call on [Jitsi](https://meet.example.org/call) at 15:00 UTC."
  - kind: links
    items:
      - text: "Read the [full story](https://example.org/story) before the vote."
        url: https://example.org/vote
"""


def test_links_in_mid_sentence_are_no_missing_plaintext(tmp_path):
    # regression: the plaintext writes "release notes [1] list", which the check took for a
    # missing item ("the plaintext part lacks ...") and so failed valid issues
    root = create_project(tmp_path, issues={"one": MID_SENTENCE_LINKS})
    report = check_issue(root / "issues" / "one")
    assert [f for f in report.findings if f.code.startswith("text.")] == []
