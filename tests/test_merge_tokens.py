"""A recipient's address and unsubscribe link go only where the theme puts them.

Per-recipient values are rendered as placeholders and substituted per message.
Text from a manifest, from dispatch.yaml or from a page fetched by ``dispatch add``
must never be able to become such a placeholder: it once could (the placeholders
had fixed names), and a planted one put each subscriber's address into a tracker
URL and their signed one-click unsubscribe link into a link to another site.

The test is generic: every text and URL field of the manifest and project models
(walked from the dataclasses, so a new field is planted too) carries a placeholder,
and the real ``dispatch send --dry-run`` bytes of each recipient are searched.
"""

from __future__ import annotations

import dataclasses
import email
import email.policy
import html
import json
import re
import types
from datetime import date
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin
from urllib.parse import parse_qs, quote, urlparse

import pytest

from dispatch_mail.project.blocks import Moment, TimeZone
from dispatch_mail.project.issue import (
    Color,
    EmailAddress,
    HeaderText,
    ImageUrl,
    Issue,
    LongText,
    Text,
    Url,
    documented_fields,
)
from dispatch_mail.project.markup import Inline, Markdown
from dispatch_mail.project.schema import field_types
from dispatch_mail.project.settings import DateFormat, Project
from tests.helpers.http_server import Reply
from tests.helpers.project import create_project
from tests.helpers.send import run

# the placeholders' fixed names before the fix, which any manifest could write
OLD_SHAPES = ["XDISPATCHMERGEEMAILX", "XDISPATCHMERGEUNSUBSCRIBEURLX", "XDISPATCHMERGEGREETINGX"]
READERS = [
    ("quentin.zebedee@example.com", "Quentin Zebedee"),
    ("ysolde.marchetti@example.com", "Ysolde Marchetti"),
]
TRACKER = "https://tracker.example.net"
NOT_PLANTED = {"templates", "issues", "lists", "smtp", "dkim", "reviewers"}  # never rendered
SKIP = object()


# ------------------------------------------------------------------ a model full of plants
def planted_value(tp: Any, meta: Any, shape: str, where: str) -> Any:
    """The YAML value of a field of type ``tp`` that carries ``shape`` wherever text can go."""
    origin, args = get_origin(tp), get_args(tp)
    if origin in (Union, types.UnionType):
        kinds = [a for a in args if a is not type(None)]
        if len(kinds) == 1:
            return planted_value(kinds[0], meta, shape, where)
        return [{"kind": k.kind, **planted(k, shape)} for k in kinds]  # every section kind
    if origin is list:
        (item,) = args
        if get_origin(item) in (Union, types.UnionType) and len(get_args(item)) > 2:
            return planted_value(item, meta, shape, where)
        limit = {"max_length": meta["max_length"]} if "max_length" in meta else {}
        value = planted_value(item, limit, shape, where)
        return SKIP if value is SKIP else [value]
    if origin in (dict, Literal) or tp in (bool, int, float, Color):
        return SKIP  # no text in them (every such field has a default)
    if tp is date:
        return "2026-01-08"
    if tp is Moment:  # an event's start and end: a date-time, checked, never free text
        return "2026-01-08T18:00" if where.endswith("start") else "2026-01-08T19:00"
    if tp is TimeZone:
        return "Europe/Stockholm"
    if tp is DateFormat:  # a CLDR pattern: letters are date fields, never text
        return "day"
    if dataclasses.is_dataclass(tp) and tp not in (Inline, Markdown):
        return planted(tp, shape)
    if tp is Inline and where.endswith(".title"):  # a title that is a link holds no other
        return f"{shape} *{shape}* `{shape}`"
    if tp is Inline:
        return f"{shape} [{shape}]({TRACKER}/inline/{shape}?u={shape})"
    if tp is Markdown:
        return f"{shape}\n\n- [{shape}]({TRACKER}/markdown/{shape}?u={shape})"
    if tp in (Url, ImageUrl):
        return f"{TRACKER}/{shape}.gif?u={shape}"
    if tp is EmailAddress:
        return f"{shape}@example.org"
    if tp in (Text, LongText, HeaderText):
        return shape if len(shape) <= meta.get("max_length", 10**6) else SKIP
    raise AssertionError(f"{where}: a field type this test cannot plant into yet: {tp!r}")


SPECIAL = {
    # a list send needs {token} (and the theme puts the signed URL in the footer: its own place)
    ("Footer", "unsubscribe_url"): "https://news.example.org/unsubscribe/{shape}?t={{token}}",
    ("Issue", "greeting"): "Hi {{name}}, {shape}",
    # the envelope sender must be an address; it is in no message's bytes
    ("Project", "return_path"): "bounces+{{token}}@example.org",
}


def planted(cls: type, shape: str) -> dict[str, Any]:
    """Every documented field of ``cls``, each holding ``shape``."""
    hints = field_types(cls)
    out: dict[str, Any] = {}
    for f in documented_fields(cls):
        if cls is Project and f.name in NOT_PLANTED:
            continue
        if (cls.__name__, f.name) == ("FeaturedSection", "actions"):
            continue  # `action` is planted; a featured item takes one or the other
        special = SPECIAL.get((cls.__name__, f.name))
        if special is not None:
            out[f.name] = special.format(shape=shape)
            continue
        value = planted_value(hints[f.name], f.metadata, shape, f"{cls.__name__}.{f.name}")
        if value is not SKIP:
            out[f.name] = value
    return out


def planted_project(root: Path, shape: str) -> Path:
    """A project whose dispatch.yaml and issue ``one`` carry ``shape`` in every text field."""
    create_project(
        root,
        config=json.dumps(planted(Project, shape), indent=1, ensure_ascii=False),
        issues={"one": json.dumps(planted(Issue, shape), indent=1, ensure_ascii=False)},
    )
    rows = "".join(f"{address},{name}\n" for address, name in READERS)
    (root / "list.csv").write_text("email,name\n" + rows, encoding="utf-8")
    return root


# ------------------------------------------------------------------ what each recipient got
def dry_run(root: Path) -> dict[str, bytes]:
    """Each recipient's message, byte for byte as a send would give it to the relay."""
    result = run(["send", "issues/one", "--list", "list.csv", "--dry-run", "out"], cwd=root)
    assert result.returncode == 0, result.stdout + result.stderr
    messages = {}
    for path in sorted((root / "out").iterdir()):
        data = path.read_bytes()
        to = email.message_from_bytes(data, policy=email.policy.default)["To"].addresses[0]
        messages[to.addr_spec] = data
    assert sorted(messages) == sorted(address for address, _ in READERS)
    return messages


def assert_only_in_the_themes_places(address: str, name: str, data: bytes) -> tuple[str, str]:
    """The address, the name and the token nowhere but To, List-Unsubscribe, greeting, footer."""
    msg = email.message_from_bytes(data, policy=email.policy.default)
    links = re.findall(r"<(https://[^>]+)>", str(msg["List-Unsubscribe"]))
    assert len(links) == 1, msg["List-Unsubscribe"]
    url = links[0]
    (token,) = parse_qs(urlparse(url).query)["t"]
    personal = [address, quote(address, safe=""), token]
    in_header = 1
    for field, value in msg.items():
        if field == "To":
            assert address in str(value) and token not in str(value)
        elif field == "List-Unsubscribe":
            # the https URL's, and the mailto's subject (the same opaque token) when there is one
            in_header = 2 if "mailto:" in str(value) else 1
            assert address not in str(value) and str(value).count(token) == in_header
        else:
            assert not any(p in str(value) for p in [*personal, name]), (field, value)
    text = msg.get_body(("plain",)).get_content().replace("\r\n", "\n")
    page = msg.get_body(("html",)).get_content()
    for body in (text, page):
        assert address not in body and quote(address, safe="") not in body
        assert body.count(token) == 1, "the token is somewhere besides the unsubscribe link"
        assert body.count(name) == 1, "the name is somewhere besides the greeting"
    assert text.count(f"Unsubscribe:\n{url}\n") == 1
    assert page.count(f'href="{html.escape(url)}"') == 1
    unfolded = data.replace(b"=\r\n", b"")  # quoted-printable soft line breaks
    assert unfolded.count(address.encode()) == 1  # the To header alone
    # List-Unsubscribe, and each body's footer
    assert unfolded.count(token.encode()) == in_header + 2
    return text, page


def current_shapes(root: Path) -> list[str]:
    """The placeholders a personal render of the project at ``root`` uses (what one could see)."""
    from dispatch_mail.project.loader import load
    from dispatch_mail.render import render_issue

    project, issue = load(root / "issues" / "one")
    return list(render_issue(project, issue, personal=True).merge_tokens.values())


@pytest.fixture(scope="module")
def predicted(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The placeholders of the same project before the plant: the best guess one could make."""
    return current_shapes(planted_project(tmp_path_factory.mktemp("guess"), "Hello"))


@pytest.mark.parametrize("which", [*OLD_SHAPES, "predicted-0", "predicted-1", "predicted-2"])
def test_no_field_can_plant_a_merge_placeholder(
    which: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    if which.startswith("predicted"):
        shape = request.getfixturevalue("predicted")[int(which[-1])]
    else:
        shape = which
    root = planted_project(tmp_path / "news", shape)
    for address, name in READERS:
        text, page = assert_only_in_the_themes_places(address, name, dry_run(root)[address])
        # the plant did reach the message, as the literal text it is, in both parts
        assert text.count(shape) > 20 and page.count(shape) > 20
        assert f"{TRACKER}/{shape}.gif?u={shape}" in page
        assert f"Hi {name}, {shape}" in text


def test_the_placeholders_depend_on_the_content_and_on_nothing_else(tmp_path: Path) -> None:
    """Same content, same placeholders (a resumed send must find its content unchanged)."""
    first = current_shapes(planted_project(tmp_path / "a", "Hello"))
    assert current_shapes(planted_project(tmp_path / "b", "Hello")) == first  # another folder
    assert current_shapes(planted_project(tmp_path / "a", "Hello!")) != first
    assert all(re.fullmatch(r"XDISPATCHMERGE[A-Z0-9]+X", token) for token in first)
    assert len(set(first)) == 3 and not set(first) & set(OLD_SHAPES)


def test_a_fetched_page_cannot_plant_one_through_dispatch_add(
    tmp_path: Path, http_server: Any
) -> None:
    email_token, url_token, greeting_token = OLD_SHAPES
    page = (
        f'<html><head><meta property="og:title" content="Read {email_token}">'
        f'<meta property="og:description" content="Why {url_token} and {greeting_token}">'
        f'<meta property="og:site_name" content="Site {email_token}"></head></html>'
    )

    def respond(method: str, path: str) -> Reply:
        return Reply(200, page.encode(), {"Content-Type": "text/html; charset=utf-8"})

    web = http_server(respond).url
    root = planted_project(tmp_path / "news", "Hello")
    target = f"{web}/p/{email_token}?u={url_token}"
    added = run(
        ["add", "issues/one", target, "--section", "reading_list", "--allow-private"], cwd=root
    )
    assert added.returncode == 0, added.stdout + added.stderr
    manifest = (root / "issues" / "one" / "issue.yaml").read_text(encoding="utf-8")
    assert all(token in manifest for token in OLD_SHAPES)  # the page's text is in the manifest
    for address, name in READERS:
        text, html_part = assert_only_in_the_themes_places(address, name, dry_run(root)[address])
        assert f"Why {url_token} and {greeting_token}" in text
        assert html.escape(target) in html_part
