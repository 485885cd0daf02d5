"""Properties: whatever text or bytes a manifest holds, it renders escaped or is refused as content.

Never any other exception: a crash, a RecursionError or a hang on a strange
manifest would be a bug, whatever the manifest says.
"""

from __future__ import annotations

import email.policy
import re
from collections import Counter
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, assume, event, example, given, settings
from hypothesis import strategies as st

from dispatch_mail.errors import ContentError
from dispatch_mail.project.markup import parse_inline, parse_markdown
from dispatch_mail.publish.build import build_issue
from tests.helpers.html import Page
from tests.helpers.project import create_project

FAST = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])

PROJECT: dict[str, Any] = {
    "name": "Prop News",
    "sender": {"name": "Prop Sender", "address": "news@example.org"},
    "footer": {
        "organisation": "Prop Org",
        "postal_address": "1 Prop Street",
        "text": "Why you get this",
        "unsubscribe_url": "https://example.org/u?t={token}",
    },
}
ISSUE: dict[str, Any] = {
    "subject": "Subject",
    "preheader": "Preheader",
    "name": "Issue 1",
    "date": "2026-01-08",
    "masthead": {"headline": "Headline", "dek": "Dek"},
    "intro": "Intro",
    "sections": [
        {
            "kind": "stories",
            "heading": "Stories",
            "items": [
                {
                    "title": "Title",
                    "url": "https://example.org/s",
                    "summary": "Summary",
                    "image": {"url": "https://img.example.org/a.png", "alt": "Alt"},
                }
            ],
        },
        {"kind": "announcements", "heading": "News", "items": ["Announcement"]},
        {"kind": "markdown", "heading": "More", "body": "Body"},
    ],
}
# where the text goes, and what kind of text the field holds
FIELDS: list[tuple[str, tuple[Any, ...], str]] = [
    ("issue", ("subject",), "text"),
    ("issue", ("preheader",), "text"),
    ("issue", ("masthead", "headline"), "lines"),
    ("issue", ("masthead", "dek"), "inline"),
    ("issue", ("intro",), "markdown"),
    ("issue", ("sections", 0, "items", 0, "title"), "text"),
    ("issue", ("sections", 0, "items", 0, "summary"), "inline"),
    ("issue", ("sections", 0, "items", 0, "image", "alt"), "text"),
    ("issue", ("sections", 1, "items", 0), "inline"),
    ("issue", ("sections", 2, "body"), "markdown"),
    ("project", ("sender", "name"), "text"),
    ("project", ("footer", "text"), "text"),
]
MARKUP_TAGS = {"strong", "em", "code", "a", "ul", "ol", "li", "h2", "h3", "blockquote", "p", "br"}
TRICKY = [
    "<",
    ">",
    "&",
    '"',
    "'",
    "{{",
    "}}",
    "{%",
    "%}",
    "{#",
    "]",
    "[",
    "*",
    "**",
    "_",
    "`",
    "\\",
    "(",
    ")",
    "<script>",
    "</mj-text>",
    "<![CDATA[",
    "]]>",
    "<!--",
    "-->",
    "&amp;",
    "&#0;",
    "\n",
    "\r\n",
    "\t",
    " ",
    "\x00",
    "\x0b",
    "\x85",
    "\u2028",
    "\ufeff",
    "[a](https://x.org/)",
    "[b](javascript:x)",
    "# ",
    "- ",
    "> ",
    "1. ",
    "é",
    "☕",
    "{token}",
    "=?utf-8?q?x?=",
    "\xa0",
]
texts = st.one_of(
    st.text(),
    st.lists(st.one_of(st.sampled_from(TRICKY), st.text(max_size=3)), max_size=12).map("".join),
)


class _NoAliases(yaml.SafeDumper):
    def ignore_aliases(self, data: object) -> bool:
        return True


def dump(data: dict) -> str:
    return yaml.dump(data, Dumper=_NoAliases, allow_unicode=True, sort_keys=False)


def put(data: Any, path: tuple[Any, ...], value: str) -> None:
    for step in path[:-1]:
        data = data[step]
    data[path[-1]] = value


def squeezed(text: str) -> str:
    """Text without any whitespace, the way to compare it across HTML's reflowing."""
    return "".join(text.replace("\r", "\n").split())


def expected_text(kind: str, value: str) -> str:
    value = value.strip()
    if kind == "inline":
        return parse_inline(value)[0].plain
    if kind == "markdown":
        return parse_markdown(value)[0].plain
    return value


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("prop")
    (root / "issues" / "p").mkdir(parents=True)
    return root / "issues" / "p"


def write(folder: Path, project: dict, issue: dict) -> None:
    create_project(folder.parent.parent, config=dump(project), issues={folder.name: dump(issue)})


def render_with(folder: Path, field: tuple[str, tuple[Any, ...], str], value: str):
    """Build the project with ``value`` in ``field``; None when dispatch refuses it as content."""
    which, path, _ = field
    project, issue = yaml.safe_load(dump(PROJECT)), yaml.safe_load(dump(ISSUE))
    target = project if which == "project" else issue
    put(target, path, value)
    assume(yaml.safe_load(dump(target)) == target)  # YAML can carry the value
    write(folder, project, issue)
    try:
        result = build_issue(folder, write=False)
    except ContentError:
        event("refused")
        return None
    event("rendered")
    return result


@pytest.fixture(scope="module")
def baseline_tags(folder) -> Counter:
    write(folder, PROJECT, ISSUE)
    return Counter(name for name, _ in Page(build_issue(folder, write=False).rendered.html).tags)


@FAST
@given(field=st.sampled_from(FIELDS), value=texts)
@example(field=FIELDS[6], value="*a " * 40)
@example(field=FIELDS[4], value="<script>alert(1)</script> & {{ 7*7 }} {% if %}")
@example(field=FIELDS[0], value="Hi\r\nBcc: victim@example.org")
@example(field=FIELDS[5], value="</mj-text><mj-raw><script>x</script></mj-raw>")
@example(
    field=FIELDS[0], value="<!--"
)  # minify() takes it for a comment in the aria-label and cuts the email
def test_any_text_in_a_field_renders_escaped_or_is_refused(folder, baseline_tags, field, value):
    result = render_with(folder, field, value)
    if result is None:
        return
    tags = Counter(name for name, _ in Page(result.rendered.html).tags)
    added = {name for name in tags if tags[name] != baseline_tags[name]}
    kind = field[2]
    if kind == "text":
        assert added == set(), "plain text became markup"
    elif kind == "lines":
        assert added <= {"br"}, "plain text became markup"
    else:
        assert added <= MARKUP_TAGS, "only the Markdown dialect makes markup"
    assert "49" not in result.rendered.text or "49" in value


@FAST
@given(field=st.sampled_from(FIELDS), value=texts)
@example(
    field=FIELDS[7], value="I \u2764\ufe0f DPDK"
)  # MRML writes it as "I ❤\u{fe0f} DPDK" in the alt attribute
def test_any_text_in_a_field_reaches_the_reader_unchanged(folder, field, value):
    result = render_with(folder, field, value)
    if result is None:
        return
    _, path, kind = field
    if path == ("sender", "name"):
        sender = (
            BytesParser(policy=email.policy.default).parsebytes(result.eml)["From"].addresses[0]
        )
        # squeezed: the stdlib's address parser puts a space between the encoded-words of a
        # long folded name (RFC 2047 says to drop it; email.header.decode_header does)
        assert squeezed(sender.display_name) == squeezed(value)
        return
    page = Page(result.rendered.html)
    seen = squeezed(
        "".join(page.data) + " ".join(v or "" for _, attrs in page.tags for v in attrs.values())
    )
    assert squeezed(expected_text(kind, value)) in seen


# ------------------------------------------------------------------ any file at all
BASE = dump(ISSUE).splitlines()
TOKENS = [
    "&a ",
    "*a",
    "<<: *a",
    "!!binary ",
    "!!python/object:os.system ",
    "? ",
    ": ",
    "- ",
    "{",
    "}",
    "[",
    "]",
    ",",
    "'",
    '"',
    "\\",
    "\t",
    "#",
    "---",
    "...",
    "%YAML 1.1",
    "~",
    "null",
    "yes",
    "1e400",
    ".nan",
    "0x1F",
    "99999999999999999999",
    "kind: ",
    "featured",
    "stories",
    "roundup",
    "items:",
    "  ",
    "    - ",
    "url: javascript:x",
    "url: https://[x",
    "\x00",
    "\xff",
    "é",
    "2026-02-30",
    "width: 100000",
    "\r",
    "\ufeff",
    "|",
    ">-",
    "!!",
    "&b [*b]",
    "*b",
]


@st.composite
def mangled_manifests(draw) -> bytes:
    """A valid manifest with lines replaced, inserted, cut and salted with YAML's special marks."""
    lines = list(BASE)
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, len(lines)))
        action = draw(st.sampled_from(["insert", "replace", "append", "cut", "indent"]))
        token = draw(st.one_of(st.sampled_from(TOKENS), st.text(max_size=8)))
        if action == "insert" or not lines or at == len(lines):
            lines.insert(at, token)
        elif action == "replace":
            lines[at] = token
        elif action == "append":
            lines[at] += token
        elif action == "cut":
            lines[at] = lines[at][: draw(st.integers(0, len(lines[at])))]
        else:
            lines[at] = "  " + lines[at]
    return "\n".join(lines).encode("utf-8", "surrogatepass")


files = st.one_of(
    st.binary(max_size=400),
    st.text(max_size=400).map(lambda t: t.encode("utf-8", "surrogatepass")),
    mangled_manifests(),
)


@FAST
@given(content=files)
@example(content=b"a: &a [*a]\n")
@example(content=b"subject: " + b"[" * 50_000 + b"]" * 50_000)
@example(content=b"- " * 50_000 + b"x")
@example(content=b"\xef\xbb\xbf\xef\xbb\xbf")
@example(
    content=b"subject: x\nsections:\n  - kind: links\n    items:\n      - text: t\n        url: https://[::1\n"
)
def test_any_file_as_a_manifest_is_loaded_or_refused_as_content(folder, content):
    write(folder, PROJECT, ISSUE)
    (folder / "issue.yaml").write_bytes(content)
    try:
        build_issue(folder, write=False)
        event("rendered")
    except ContentError as exc:
        event("refused")
        assert exc.problems, "a content error says what is wrong"
        for problem in exc.problems:
            assert "\n" not in str(problem), "one line per problem"
            assert re.match(r"issues/p/issue\.yaml|.*issue\.yaml", problem.path)


@FAST
@given(content=files)
def test_any_file_as_the_project_file_is_loaded_or_refused_as_content(folder, content):
    write(folder, PROJECT, ISSUE)
    (folder.parent.parent / "dispatch.yaml").write_bytes(content)
    try:
        build_issue(folder, write=False)
    except ContentError as exc:
        assert all("\n" not in str(problem) for problem in exc.problems)
