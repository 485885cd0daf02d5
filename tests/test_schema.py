"""Validation of dispatch.yaml and issue manifests: every problem, located, in one run.

Each test writes a real project with one kind of bad input and asserts the
exact lines a user would read: ``path:line:column: key: message``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dispatch_mail.errors import ContentError, Problem
from dispatch_mail.project.issue import StoriesSection
from dispatch_mail.project.loader import load
from dispatch_mail.project.yaml_nodes import MAX_DEPTH, MAX_FILE_BYTES
from tests.helpers.project import PROJECT_YAML

ISSUE = "issues/test/issue.yaml"
KINDS = "featured, stories, reading_list, roundup, announcements, links, cta, markdown, events"


def problems(issue_dir: Path) -> list[str]:
    """The problems of loading ``issue_dir``, as the lines the CLI prints (without 'error: ')."""
    with pytest.raises(ContentError) as caught:
        load(issue_dir)
    return [str(p) for p in caught.value.problems]


def issue_with(sections: str, head: str = "") -> str:
    """A valid issue whose ``sections:`` list is ``sections`` (already indented by two)."""
    return (
        "subject: Test issue\n"
        "name: Issue 1\n"
        "date: 2026-01-08\n"
        f"{head}"
        "masthead:\n"
        "  headline: Hello\n"
        "sections:\n"
        f"{sections}"
    )


# ------------------------------------------------------------------ valid input
def test_the_minimal_project_loads(write_project):
    project, issue = load(write_project())
    assert project.name == "Test News"
    assert issue.slug == "test" and issue.subject == "Test issue"
    assert issue.date.isoformat() == "2026-01-08"


def test_every_field_of_a_story_loads_into_the_model(write_project):
    folder = write_project(
        issue_with("""\
  - kind: stories
    heading: Stories
    items:
      - kicker: User Story
        title: "A & B <c>"
        url: https://example.org/a?b=1#c
        summary: "It *works* with `rte_flow` and [docs](https://docs.example.org/)."
        quote:
          text: Quoted.
          by: Someone
        link_label: Read it
        image:
          url: https://img.example.org/a.png
          alt: A picture
          width: 300
          link: mailto:editors@example.org
""")
    )
    _, issue = load(folder)
    (section,) = issue.sections
    assert isinstance(section, StoriesSection)
    story = section.items[0]
    assert story.title.plain == "A & B <c>"
    assert story.summary.plain == "It works with rte_flow and docs."
    assert [link.url for link in story.summary.links()] == ["https://docs.example.org/"]
    assert story.image is not None and story.image.width == 300


# ------------------------------------------------------------------ one test per kind of bad input
def test_a_yaml_syntax_error_names_its_line_and_column(write_project):
    folder = write_project("""\
        subject: Test issue
        name: Issue 1
        date: 2026-01-08
        masthead:
          headline: [unclosed
        sections: []
        """)
    assert problems(folder) == [f"{ISSUE}:6:9: YAML syntax error: did not find expected ',' or ']'"]


def test_a_tab_indentation_is_a_syntax_error_where_the_tab_is(write_project):
    folder = write_project("subject: Test issue\nmasthead:\n\theadline: Hello\n")
    assert problems(folder) == [
        f"{ISSUE}:3:1: YAML syntax error: found character that cannot start any token"
    ]


def test_wrong_types_are_all_reported(write_project):
    folder = write_project("""\
        subject: Test issue
        name: Issue 1
        date: 2026-01-08
        masthead: Hello
        sections:
          kind: stories
        utm:
          enabled: maybe
        """)
    assert problems(folder) == [
        f"{ISSUE}:4:11: masthead: expected a mapping, got 'Hello'",
        f"{ISSUE}:6:3: sections: expected a list, got a mapping",
        f"{ISSUE}:8:12: utm.enabled: expected true or false, got 'maybe'",
    ]


def test_a_number_where_a_number_is_expected(write_project):
    folder = write_project(
        issue_with("""\
  - kind: stories
    items:
      - title: T
        url: https://example.org/
        summary: S
        image:
          url: https://img.example.org/a.png
          alt: A
          width: wide
""")
    )
    assert problems(folder) == [
        f"{ISSUE}:15:18: sections[0].items[0].image.width: expected a whole number, got 'wide'"
    ]


def test_missing_required_fields_are_reported_where_their_mapping_starts(write_project):
    folder = write_project("""\
        name: Issue 1
        date: 2026-01-08
        masthead:
          eyebrow: Hi
        sections:
          - kind: stories
            items:
              - title: T
                summary: S
        """)
    assert problems(folder) == [
        f"{ISSUE}:1:1: subject: missing (required text)",
        f"{ISSUE}:4:3: masthead.headline: missing (required text)",
        f"{ISSUE}:8:9: sections[0].items[0].url: missing (required URL)",
    ]


def test_an_unknown_key_gets_a_did_you_mean(write_project):
    folder = write_project(
        issue_with("  - kind: announcements\n    items: [News]\n", head="preheadr: Soon\n")
    )
    assert problems(folder) == [f"{ISSUE}:4:1: preheadr: unknown key (did you mean 'preheader'?)"]


def test_an_unknown_key_with_no_close_match_lists_the_known_keys(write_project):
    folder = write_project(
        issue_with(
            "  - kind: cta\n    text: Go\n    button:\n      label: Go\n"
            "      url: https://example.org/\n      colour: red\n"
        )
    )
    assert problems(folder) == [
        f"{ISSUE}:12:7: sections[0].button.colour: unknown key; known keys: label, url"
    ]


def test_an_unknown_section_kind_gets_a_suggestion(write_project):
    folder = write_project(
        issue_with(
            "  - kind: anouncements\n    items: [News]\n  - kind: gallery\n    items: [News]\n"
        )
    )
    assert problems(folder) == [
        f"{ISSUE}:7:11: sections[0].kind: unknown section kind 'anouncements' (did you mean "
        "'announcements'?)",
        f"{ISSUE}:9:11: sections[1].kind: unknown section kind 'gallery'; one of: {KINDS}",
    ]


def test_a_section_kind_that_is_not_a_name(write_project):
    folder = write_project(
        issue_with("  - kind: [stories]\n    items: [News]\n  - kind:\n    items: [News]\n")
    )
    assert problems(folder) == [
        f"{ISSUE}:7:11: sections[0].kind: expected one of: {KINDS}; got a list",
        f"{ISSUE}:9:10: sections[1].kind: expected one of: {KINDS}; got nothing (null)",
    ]


def test_a_section_without_a_kind(write_project):
    folder = write_project(issue_with("  - heading: News\n    items: [News]\n"))
    assert problems(folder) == [f"{ISSUE}:7:5: sections[0].kind: missing; one of: {KINDS}"]


def test_empty_strings_and_empty_values_are_refused(write_project):
    folder = write_project("""\
        subject: ""
        name:
        date: 2026-01-08
        masthead:
          headline: "   "
        sections:
          - kind: announcements
            items: [""]
        """)
    assert problems(folder) == [
        f"{ISSUE}:1:10: subject: must not be empty",
        f"{ISSUE}:2:6: name: is empty; give a value or leave the key out",
        f"{ISSUE}:5:13: masthead.headline: must not be empty",
        f"{ISSUE}:8:13: sections[0].items[0]: must not be empty",
    ]


@pytest.mark.parametrize(
    "url, scheme",
    [
        ("javascript:alert(1)", "javascript"),
        ("JavaScript:alert(1)", "javascript"),
        ("data:text/html;base64,PHNjcmlwdD4=", "data"),
        ("ftp://files.example.org/a", "ftp"),
    ],
)
def test_url_fields_accept_only_http_https_and_mailto(write_project, url, scheme):
    folder = write_project(
        issue_with(f"""\
  - kind: links
    items:
      - text: A link
        url: "{url}"
""")
    )
    assert problems(folder) == [
        f"{ISSUE}:10:14: sections[0].items[0].url: '{scheme}:' links are not allowed (only http, "
        "https and mailto)"
    ]


@pytest.mark.parametrize(
    "url, scheme",
    [
        ("javascript:alert(1)", "javascript"),
        ("data:text/html,hi", "data"),
        ("ftp://files.example.org/a", "ftp"),
    ],
)
def test_inline_markdown_links_accept_only_http_https_and_mailto(write_project, url, scheme):
    folder = write_project(
        issue_with(
            "  - kind: announcements\n    items:\n      - 'Fine [ok](https://example.org/) and "
            f"[bad]({url}).'\n",
            head=f"intro: |\n  Para one.\n\n  - bullet with [evil]({url})\n",
        )
    )
    assert problems(folder) == [
        f"{ISSUE}:4:8: intro: link [evil]: '{scheme}:' links are not allowed (only http, https "
        "and mailto)",
        f"{ISSUE}:13:9: sections[0].items[0]: link [bad]: '{scheme}:' links are not allowed (only "
        "http, https and mailto)",
    ]


def test_mailto_and_http_links_are_fine(write_project):
    folder = write_project(
        issue_with(
            "  - kind: announcements\n    items:\n      - 'Write [to us](mailto:news@example.org) "
            "or see [this](http://example.org/).'\n"
        )
    )
    _, issue = load(folder)
    assert [link.url for link in issue.sections[0].items[0].links()] == [
        "mailto:news@example.org",
        "http://example.org/",
    ]


@pytest.mark.parametrize(
    "url, message",
    [
        ("http://img.example.org/a.png", "'http:' links are not allowed (only https)"),
        ("data:image/png;base64,iVBORw0KGgo=", "'data:' links are not allowed (only https)"),
        (
            "//img.example.org/a.png",
            "'//img.example.org/a.png' is not an absolute URL (use https://…)",
        ),
    ],
)
def test_image_urls_must_be_https(write_project, url, message):
    folder = write_project(
        issue_with(
            "  - kind: announcements\n    items: [News]\n",
        ).replace(
            "  headline: Hello\n",
            f'  headline: Hello\n  image:\n    url: "{url}"\n    alt: A picture\n',
        )
    )
    assert problems(folder) == [f"{ISSUE}:7:10: masthead.image.url: {message}"]


def test_a_logo_url_in_the_project_file_must_be_https_too(write_project):
    folder = write_project(
        config=PROJECT_YAML
        + "brand:\n  logo:\n    url: http://example.org/logo.png\n    alt: Logo\n"
    )
    assert problems(folder) == [
        "dispatch.yaml:11:10: brand.logo.url: 'http:' links are not allowed (only https)"
    ]


@pytest.mark.parametrize("value", ["2026-02-30", "2026-13-01", "next tuesday", "26/01/2026"])
def test_an_invalid_date(write_project, value):
    folder = write_project(
        f"subject: S\nname: N\ndate: {value}\nmasthead:\n  headline: H\n"
        "sections:\n  - kind: cta\n    text: T\n"
    )
    assert problems(folder) == [
        f"{ISSUE}:3:7: date: '{value}' is not a valid date (use YYYY-MM-DD)"
    ]


def test_line_breaks_in_header_fields_are_refused_in_both_files(write_project):
    folder = write_project(
        issue_with(
            "  - kind: cta\n    text: T\n", head='preheader: "Soon\\nBcc: victim@example.org"\n'
        ).replace("subject: Test issue", 'subject: "Hello\\r\\nBcc: victim@example.org"'),
        config=PROJECT_YAML.replace("name: Test Sender", "name: |\n    Test\n    Sender"),
    )
    header = "must be one line: CR and LF are not allowed in a mail header"
    assert problems(folder) == [
        f"dispatch.yaml:3:9: sender.name: {header}",
        f"{ISSUE}:1:10: subject: {header}",
        f"{ISSUE}:4:12: preheader: {header}",
    ]


def test_a_folded_subject_becomes_one_line(write_project):
    folder = write_project(
        issue_with("  - kind: cta\n    text: T\n").replace(
            "subject: Test issue", "subject: >-\n  Test\n  issue"
        )
    )
    assert load(folder)[1].subject == "Test issue"


def test_duplicate_keys_are_reported_and_the_rest_still_validated(write_project):
    folder = write_project("""\
        subject: Test issue
        name: Issue 1
        date: 2026-02-30
        subject: Again
        masthead:
          headline: Hello
          headline: Twice
        sections:
          - kind: stories
            kind: stories
        """)
    assert problems(folder) == [
        f"{ISSUE}:3:7: date: '2026-02-30' is not a valid date (use YYYY-MM-DD)",
        f"{ISSUE}:4:1: subject: duplicate key (first set on line 1)",
        f"{ISSUE}:7:3: masthead.headline: duplicate key (first set on line 6)",
        f"{ISSUE}:9:5: sections[0].items: missing (required list)",
        f"{ISSUE}:10:5: sections[0].kind: duplicate key (first set on line 9)",
    ]


def test_yaml_aliases_are_refused_where_they_are_written(write_project):
    folder = write_project("""\
        subject: &title Test issue
        name: *title
        date: 2026-01-08
        masthead: &top
          headline: Hello
        sections:
          - kind: announcements
            items: &news
              - One
          - kind: announcements
            items: *news
        utm: *top
        """)
    alias = "YAML aliases (*name) are not allowed in dispatch files"
    assert problems(folder) == [
        f"{ISSUE}:2:7: name: {alias}",
        f"{ISSUE}:11:12: sections[1].items: {alias}",
        f"{ISSUE}:12:6: utm: {alias}",
    ]


def test_a_billion_laughs_is_refused_without_expanding_it(write_project):
    lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    folder = write_project("\n".join(lines) + "\n")
    found = problems(folder)
    aliases = [
        line
        for line in found
        if line.endswith("YAML aliases (*name) are not allowed in dispatch files")
    ]
    assert len(aliases) == 9 * 9, "each alias once, where it is written"
    assert (
        aliases[0] == f"{ISSUE}:2:10: a1[0]: YAML aliases (*name) are not allowed in dispatch files"
    )
    assert (
        len(found) == 81 + 10 + 5
    )  # and the ten unknown keys, and the five required keys that are missing


def test_too_long_strings_and_too_many_items(write_project):
    folder = write_project(
        issue_with("  - kind: announcements\n    items:\n" + "      - News\n" * 51)
        .replace("subject: Test issue", "subject: " + "x" * 201)
        .replace("headline: Hello", "headline: " + "y" * 201)
    )
    assert problems(folder) == [
        f"{ISSUE}:1:10: subject: is 201 characters long; at most 200 are allowed",
        f"{ISSUE}:5:13: masthead.headline: is 201 characters long; at most 200 are allowed",
        f"{ISSUE}:9:7: sections[0].items: has 51 items; at most 50 are allowed",
    ]


def test_a_list_with_too_few_items(write_project):
    folder = write_project(issue_with("  - kind: stories\n    items: []\n"))
    assert problems(folder) == [f"{ISSUE}:8:12: sections[0].items: needs at least 1 item"]


def test_out_of_range_numbers(write_project):
    image = (
        "\n      image:\n        url: https://img.example.org/a.png\n        alt: A\n"
        "        width: {}\n"
    )
    folder = write_project(
        issue_with(
            "  - kind: stories\n    items:\n      - title: T\n        url: https://example.org/\n"
            "        summary: S"
            + image.format(2000).replace("\n      ", "\n        ")
            + "      - title: T2\n        url: https://example.org/2\n        summary: S2"
            + image.format(15).replace("\n      ", "\n        ")
        ),
        config=PROJECT_YAML + "smtp:\n  default:\n    host: smtp.example.org\n    port: 70000\n",
    )
    assert problems(folder) == [
        "dispatch.yaml:12:11: smtp.default.port: 70000 is out of range (1 to 65535)",
        f"{ISSUE}:15:18: sections[0].items[0].image.width: 2000 is out of range (16 to 600)",
        f"{ISSUE}:22:18: sections[0].items[1].image.width: 15 is out of range (16 to 600)",
    ]


def test_a_file_over_one_mebibyte_is_not_read(write_project):
    folder = write_project(b"subject: S\n" + b"# padding\n" * (MAX_FILE_BYTES // 10))
    size = 11 + 10 * (MAX_FILE_BYTES // 10)
    assert size > MAX_FILE_BYTES
    assert problems(folder) == [f"{ISSUE}: file is {size:,} bytes; at most 1,048,576 are read"]


def test_invalid_utf8_names_the_first_bad_byte(write_project):
    folder = write_project("subject: Test issue\nname: Caf\xe9\n".encode("latin-1"))
    assert problems(folder) == [f"{ISSUE}:2:10: file is not valid UTF-8"]


@pytest.mark.parametrize("content", [b"", b"   \n\n", b"# nothing but a comment\n"])
def test_an_empty_file(write_project, content):
    assert problems(write_project(content)) == [f"{ISSUE}: file is empty"]


@pytest.mark.parametrize(
    "content, kind",
    [
        (b"- subject: Test\n- name: N\n", "a list"),
        (b"just some text\n", "'just some text'"),
        (b"---\n~\n", "nothing (null)"),
    ],
)
def test_a_top_level_that_is_not_a_mapping(write_project, content, kind):
    line = 2 if content.startswith(b"---") else 1
    assert problems(write_project(content)) == [f"{ISSUE}:{line}:1: expected a mapping, got {kind}"]


def test_problems_of_the_project_file_come_with_those_of_the_issue(write_project):
    folder = write_project(
        issue_with("  - kind: cta\n    text: T\n").replace("date: 2026-01-08", "date: 2026-01-32"),
        config="""\
            name: Test News
            sender:
              name: Test Sender
              address: not-an-address
            footer:
              organization: Test Org
              postal_address: 1 Test Street, Testville
              unsubscribe_url: https://example.org/unsubscribe
            """,
    )
    assert problems(folder) == [
        "dispatch.yaml:4:12: sender.address: 'not-an-address' is not a valid email address",
        "dispatch.yaml:6:3: footer.organisation: missing (required text)",
        "dispatch.yaml:6:3: footer.organization: unknown key (did you mean 'organisation'?)",
        f"{ISSUE}:3:7: date: '2026-01-32' is not a valid date (use YYYY-MM-DD)",
    ]


def test_a_manifest_with_three_distinct_errors_gives_three_problems(write_project):
    folder = write_project("""\
        subject: Test issue
        name: Issue 1
        date: 2026-01-08
        masthead:
          headline: Hello
          dekk: Typo
        sections:
          - kind: links
            items:
              - text: A link
                url: javascript:alert(1)
          - kind: roundup
            items: []
        """)
    found = problems(folder)
    assert found == [
        f"{ISSUE}:6:3: masthead.dekk: unknown key (did you mean 'dek'?)",
        f"{ISSUE}:11:14: sections[0].items[0].url: 'javascript:' links are not allowed (only "
        "http, https and mailto)",
        f"{ISSUE}:12:5: sections[1].region: missing (required text)",
    ]


def test_problems_carry_structured_fields(write_project):
    folder = write_project(
        issue_with("  - kind: cta\n    text: T\n").replace("date: 2026-01-08", "date: soon")
    )
    with pytest.raises(ContentError) as caught:
        load(folder)
    assert caught.value.problems == (
        Problem(ISSUE, 3, 7, "date", "'soon' is not a valid date (use YYYY-MM-DD)"),
    )
    assert caught.value.exit_code == 1


# -------------------------------------------------- hostile files never crash the loader
def test_nesting_deeper_than_the_limit_is_refused_before_composing(write_project):
    # 100,000 levels: libyaml's recursive composer used to overflow the C stack (a segfault)
    folder = write_project(b"subject: " + b"[" * 100_000 + b"]" * 100_000 + b"\n")
    (found,) = problems(folder)
    # our event scan stops at MAX_DEPTH; PyYAML >= 6.0.4 may stop it first (at its own depth, 1,000)
    assert found.startswith(
        (f"{ISSUE}:1:{9 + MAX_DEPTH}: subject{'[0]' * (MAX_DEPTH - 1)}: ", f"{ISSUE}:1:1009: ")
    )
    assert found.endswith(f"nested more than {MAX_DEPTH} levels deep")


def test_a_nul_character_is_one_located_problem(write_project):
    folder = write_project(b"subject: Test\nname: Is\x00sue\n")
    assert problems(folder) == [
        f"{ISSUE}:2:9: YAML syntax error: character #x0000 is not allowed (control characters are "
        "not allowed)"
    ]


def test_control_characters_in_text_are_refused(write_project):
    folder = write_project(
        issue_with("  - kind: cta\n    text: T\n").replace(
            "subject: Test issue", 'subject: "Test\\x1b[31m"'
        )
    )
    assert problems(folder) == [f"{ISSUE}:1:10: subject: contains control characters"]


@pytest.mark.parametrize(
    "url, message",
    [
        ("https://[bad/", "'https://[bad/' is not a valid URL (Invalid IPv6 URL)"),
        (
            "https://example.org:99999/",
            "'https://example.org:99999/' is not a valid URL (Port out of range 0-65535)",
        ),
        ("https:///path", "'https:///path' has no host"),
        ("https://exa mple.org/", "URL contains spaces or control characters"),
    ],
)
def test_malformed_urls_are_problems_not_crashes(write_project, url, message):
    folder = write_project(
        issue_with(
            f'  - kind: cta\n    text: T\n    button:\n      label: Go\n      url: "{url}"\n'
        )
    )
    assert problems(folder) == [f"{ISSUE}:11:12: sections[0].button.url: {message}"]


def test_complex_keys_and_merges_are_refused(write_project):
    folder = write_project(
        issue_with("  - kind: cta\n    text: T\n    <<: {heading: H}\n    ? [a]\n    : b\n")
    )
    plain = "keys must be plain names (no '<<' merges or complex keys)"
    assert problems(folder) == [
        f"{ISSUE}:9:5: sections[0]: {plain}",
        f"{ISSUE}:10:7: sections[0]: {plain}",
    ]
