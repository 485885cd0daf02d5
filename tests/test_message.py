"""The built email.eml: a conforming RFC 5322 / MIME message, read back by the stdlib parser."""

from __future__ import annotations

import email.policy
import re
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest

from dispatch_mail.publish.build import build_issue
from tests.helpers.project import ISSUE_YAML, PROJECT_YAML

REPO = Path(__file__).resolve().parent.parent
STRICT = email.policy.default.clone(raise_on_defect=True)
SINGLE = ("From", "To", "Subject", "Date", "Message-ID", "MIME-Version")


def parse(raw: bytes) -> EmailMessage:
    message = BytesParser(policy=STRICT).parsebytes(raw)
    assert isinstance(message, EmailMessage)
    assert message.defects == []
    for part in message.walk():
        assert part.defects == [], part.get_content_type()
    return message


def header_block(raw: bytes) -> bytes:
    return raw.split(b"\r\n\r\n", 1)[0]


@pytest.fixture(scope="module")
def q1_eml(tmp_path_factory) -> bytes:
    out = tmp_path_factory.mktemp("q1")
    result = build_issue(REPO / "issues" / "2026-q1", out)
    raw = (out / "email.eml").read_bytes()
    assert raw == result.eml
    return raw


def test_the_eml_parses_without_a_single_defect(q1_eml):
    parse(q1_eml)


def test_required_headers_appear_exactly_once(q1_eml):
    message = parse(q1_eml)
    for name in SINGLE:
        assert len(message.get_all(name) or []) == 1, name
    assert message["From"].addresses[0].addr_spec == "newsletter@dpdk.org"
    assert message["From"].addresses[0].display_name == "DPDK Project"
    assert message["Subject"] == "DPDK Dispatch Q1 2026"
    assert message["MIME-Version"] == "1.0"
    assert parsedate_to_datetime(message["Date"]).tzinfo is not None
    assert re.fullmatch(r"<2026-q1\.build\.0\.[0-9a-f]{12}@dpdk\.org>", message["Message-ID"])


def test_it_is_multipart_alternative_with_plain_text_first_and_html_last(q1_eml):
    message = parse(q1_eml)
    assert message.get_content_type() == "multipart/alternative"
    parts = list(message.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    assert all(p.get_content_charset() == "utf-8" for p in parts)


def test_the_parts_decode_to_what_was_rendered(tmp_path):
    result = build_issue(REPO / "issues" / "2026-q1", tmp_path)
    plain, html = parse(result.eml).iter_parts()
    # line breaks of a text part travel as CRLF
    assert plain.get_content().replace("\r\n", "\n") == result.rendered.text
    # and a text part always ends with one
    assert html.get_content().replace("\r\n", "\n").rstrip("\n") == result.rendered.html.rstrip(
        "\n"
    )
    assert result.rendered.text == (tmp_path / "email.txt").read_text(encoding="utf-8")


def test_line_endings_are_crlf(q1_eml):
    assert b"\n" in q1_eml
    assert re.search(rb"(?<!\r)\n", q1_eml) is None, "a bare LF"
    assert re.search(rb"\r(?!\n)", q1_eml) is None, "a bare CR"


def test_no_line_is_longer_than_998_octets_and_body_lines_fit_in_78(q1_eml):
    lines = q1_eml.split(b"\r\n")
    assert max(len(line) for line in lines) <= 998
    message = parse(q1_eml)
    for part in message.iter_parts():
        assert part["Content-Transfer-Encoding"] == "quoted-printable"
    body = q1_eml.split(b"\r\n\r\n", 1)[1]
    assert [line for line in body.split(b"\r\n") if len(line) > 78] == []


def test_header_lines_are_folded_at_78(q1_eml):
    assert [line for line in header_block(q1_eml).split(b"\r\n") if len(line) > 78] == []


def test_the_raw_message_is_ascii(q1_eml):
    q1_eml.decode("ascii")


# ------------------------------------------------------------------ non-ASCII and awkward headers
SUBJECT = "Café ☕ — “Q1” news für alle: ünïcödé"


def test_a_non_ascii_subject_is_rfc2047_encoded_and_decodes_back(write_project, tmp_path):
    folder = write_project(ISSUE_YAML.replace("subject: Test issue", f"subject: '{SUBJECT}'"))
    raw = build_issue(folder, tmp_path / "out").eml
    head = header_block(raw).decode("ascii")
    subject_lines = re.search(r"^Subject:.*(?:\r\n[ \t].*)*", head, re.MULTILINE)
    assert subject_lines and "=?utf-8?" in subject_lines.group(0).lower()
    assert "Café" not in head
    assert parse(raw)["Subject"] == SUBJECT


def test_a_long_non_ascii_subject_is_folded_and_decodes_back(write_project, tmp_path):
    subject = ("Überraschung ☕ " * 13).strip()
    assert len(subject) <= 200
    folder = write_project(ISSUE_YAML.replace("subject: Test issue", f"subject: {subject}"))
    raw = build_issue(folder, tmp_path / "out").eml
    assert [line for line in header_block(raw).split(b"\r\n") if len(line) > 78] == []
    assert parse(raw)["Subject"] == subject


def test_a_non_ascii_sender_name_is_encoded_and_the_address_is_not(write_project, tmp_path):
    folder = write_project(config=PROJECT_YAML.replace("name: Test Sender", "name: Zoë Ångström"))
    raw = build_issue(folder, tmp_path / "out").eml
    (from_line,) = [line for line in header_block(raw).split(b"\r\n") if line.startswith(b"From:")]
    assert b"=?utf-8?" in from_line.lower() and b"<news@example.org>" in from_line
    sender = parse(raw)["From"].addresses[0]
    assert (sender.display_name, sender.addr_spec) == ("Zoë Ångström", "news@example.org")


def test_a_sender_name_with_specials_is_quoted(write_project, tmp_path):
    folder = write_project(
        config=PROJECT_YAML.replace("name: Test Sender", "name: 'Test \"Q\" <News>, Inc.'")
    )
    sender = parse(build_issue(folder, tmp_path / "out").eml)["From"].addresses[0]
    assert (sender.display_name, sender.addr_spec) == ('Test "Q" <News>, Inc.', "news@example.org")


def test_a_non_ascii_body_round_trips(write_project, tmp_path):
    folder = write_project(
        ISSUE_YAML.replace("Something happened.", "Ünïcödé ☕ — “quoted” <b>&amp;</b> ½")
    )
    result = build_issue(folder, tmp_path / "out")
    plain, html = parse(result.eml).iter_parts()
    # CommonMark reads "&amp;" as the character "&"; the tags stay text, escaped in HTML
    assert "Ünïcödé ☕ — “quoted” <b>&</b> ½" in plain.get_content()
    assert "Ünïcödé ☕ — “quoted” &lt;b&gt;&amp;&lt;/b&gt; ½" in html.get_content()
    assert max(len(line) for line in result.eml.split(b"\r\n")) <= 78
