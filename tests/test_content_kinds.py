"""Captions and credits, bylines, several featured actions, link groups, announcement images.

Each shows in the HTML and in the plaintext; rules between fields are located problems.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from dispatch_mail.cli import main
from dispatch_mail.errors import ContentError
from dispatch_mail.project.loader import load
from dispatch_mail.publish.build import build_issue
from tests.helpers.project import REPO

ISSUE = "issues/test/issue.yaml"
HEAD = "subject: Test issue\nname: Issue 1\ndate: 2026-01-08\nmasthead:\n  headline: Hello\n"
IMAGE = (
    "url: https://img.example.org/a.png\n"
    "alt: A red kite over a field\n"
    "caption: 'The kite, *mid-turn*.'\n"
    "credit: 'Photo: Ana Lima'\n"
)


def indented(text: str, spaces: int) -> str:
    return "".join(" " * spaces + line + "\n" for line in text.splitlines())


def problems(folder: Path) -> list[str]:
    with pytest.raises(ContentError) as caught:
        load(folder)
    return [str(p) for p in caught.value.problems]


def test_story_caption_credit_byline_and_date_show_in_html_and_text(write_project):
    folder = write_project(
        HEAD
        + "sections:\n  - kind: stories\n    items:\n      - title: Kites\n"
        + "        url: https://example.org/kites\n        summary: About kites.\n"
        + "        byline: By Tom Okafor\n        date: 2026-01-05\n        image:\n"
        + indented(IMAGE, 10)
    )
    result = build_issue(folder, write=False)
    html, text = result.rendered.html, result.rendered.text
    assert "By Tom Okafor · January 5, 2026" in html
    assert "By Tom Okafor · January 5, 2026" in text
    assert "The kite, <em>mid-turn</em>." in html and "Photo: Ana Lima" in html
    assert "[Image: A red kite over a field] The kite, _mid-turn_. (Photo: Ana Lima)" in " ".join(
        text.split()
    )


def test_link_item_image_and_title_only_groups(write_project):
    folder = write_project(
        HEAD
        + "sections:\n  - kind: links\n    heading: Links\n    items:\n"
        + "      - text: Read this.\n        url: https://example.org/r\n        image:\n"
        + indented(IMAGE, 10)
        + "    groups:\n      - heading: Crates\n        items:\n"
        + "          - title: '`serde` 2.0 is out'\n            url: https://example.org/serde\n"
        + "          - title: A *fast* parser\n            url: https://example.org/parser\n"
    )
    result = build_issue(folder, write=False)
    html, text = result.rendered.html, result.rendered.text
    assert 'src="https://img.example.org/a.png"' in html and "Photo: Ana Lima" in html
    assert ">Crates</h3>" in html
    assert "<code" in html and "serde</code> 2.0 is out</a>" in html
    assert "CRATES\n* serde 2.0 is out\n  https://example.org/serde" in text
    assert "[Image: A red kite over a field]" in text


def test_a_links_section_with_only_groups_is_fine_and_an_empty_one_is_not(write_project):
    only_groups = (
        "sections:\n  - kind: links\n    groups:\n      - heading: G\n        items:\n"
        "          - title: T\n            url: https://example.org/t\n"
    )
    load(write_project(HEAD + only_groups))
    folder = write_project(HEAD + "sections:\n  - kind: links\n    heading: Nothing\n")
    assert problems(folder) == [f"{ISSUE}:7:5: sections[0].items: needs at least 1 item or a group"]


def test_a_linked_title_may_not_hold_a_link(write_project):
    folder = write_project(
        HEAD
        + "sections:\n  - kind: links\n    groups:\n      - heading: G\n        items:\n"
        + "          - title: 'See [here](https://example.org/x)'\n"
        + "            url: https://example.org/t\n"
    )
    assert problems(folder) == [
        f"{ISSUE}:11:20: sections[0].groups[0].items[0].title: must not hold a link: it links "
        "to `url`"
    ]


def test_announcements_take_text_or_text_with_an_image(write_project):
    folder = write_project(
        HEAD
        + "sections:\n  - kind: announcements\n    items:\n      - Plain news.\n"
        + "      - text: News with a picture.\n        image:\n"
        + indented(IMAGE, 10)
    )
    result = build_issue(folder, write=False)
    html, text = result.rendered.html, result.rendered.text
    assert "Plain news." in html and "News with a picture." in html
    assert 'alt="A red kite over a field"' in html and "Photo: Ana Lima" in html
    assert "- Plain news.\n- News with a picture.\n  [Image: A red kite over a field]" in text


def test_featured_with_several_actions_shows_each_button(write_project):
    folder = write_project(
        HEAD
        + "sections:\n  - kind: featured\n    title: Summit\n    summary: Come.\n    actions:\n"
        + "      - label: Register now\n        url: https://example.org/register\n"
        + "      - label: See the programme\n        url: https://example.org/programme\n"
    )
    result = build_issue(folder, write=False)
    html, text = result.rendered.html, result.rendered.text
    assert "Register now" in html and "See the programme" in html
    assert 'href="https://example.org/register"' in html  # the title links to the first
    assert "Register now:\nhttps://example.org/register" in text
    assert "See the programme:\nhttps://example.org/programme" in text


def test_action_and_actions_together_are_a_located_problem(write_project):
    folder = write_project(
        HEAD
        + "sections:\n  - kind: featured\n    title: Summit\n    summary: Come.\n"
        + "    action:\n      label: Go\n      url: https://example.org/go\n    actions:\n"
        + "      - label: Register\n        url: https://example.org/register\n"
    )
    assert problems(folder) == [
        f"{ISSUE}:14:7: sections[0].actions: give `action` or `actions`, not both"
    ]


def test_the_example_builds_and_checks_with_exit_0(tmp_path):
    runner = CliRunner()
    issue = str(REPO / "examples" / "all-sections")
    built = runner.invoke(main, ["build", issue, "--out", str(tmp_path / "out")])
    assert built.exit_code == 0, built.output
    assert "2 calendar files in events/" in built.output
    checked = runner.invoke(main, ["check", issue])
    assert checked.exit_code == 0, checked.output
