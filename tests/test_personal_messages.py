"""What each recipient gets: one message, theirs alone, conforming, nothing left to merge."""

from __future__ import annotations

import re
from email.utils import getaddresses
from urllib.parse import parse_qs, urlparse

import pytest

from dispatch_mail.delivery import campaign
from dispatch_mail.mail.headers import list_id
from dispatch_mail.mail.personal import PersonalMessages
from dispatch_mail.mail.tokens import TokenClaims, TokenKeys
from dispatch_mail.render.context import MERGE_FIELDS
from tests.helpers.project import Project
from tests.helpers.send import SECRET, invoke, send_args
from tests.helpers.smtp_server import Received, SmtpServer

LIST_ID = "Example Weekly <example-weekly.example.org>"
PEOPLE = [
    ("ann@example.com", "Ann Smith"),
    ("bob@example.com", ""),
    ("chloé@example.com", "x"),  # not a usable address: excluded, never sent
    ("dana@example.com", "Dana Ünal-Øberg"),
    ("eve@example.com", "Eve\r\nBcc: x@y"),  # header injection: excluded
    ("Fred.Jones@EXAMPLE.com", 'Fred "the Bold" Jones, Jr.'),
]
SENT_TO = ["ann@example.com", "bob@example.com", "dana@example.com", "Fred.Jones@example.com"]


def claims_of(token: str) -> TokenClaims:
    claims = TokenKeys.from_secrets(SECRET.encode()).open(token, lifetime_days=400)
    assert claims is not None, token
    return claims


def unsubscribe_urls(received: Received) -> list[str]:
    return re.findall(r"<([^>]+)>", str(received.message["List-Unsubscribe"]))


@pytest.fixture
def sent(project: Project, server: SmtpServer) -> list[Received]:
    result = invoke(*send_args(project, server, project.csv(PEOPLE)))
    assert result.exit_code == 0, result.output
    return sorted(server.messages, key=lambda m: SENT_TO.index(m.recipient))


def test_one_message_per_recipient_addressed_to_them_alone(sent):
    assert [m.recipient for m in sent] == SENT_TO
    for received in sent:
        msg = received.message
        assert received.mail_from == "weekly@example.org"
        assert [addr for _, addr in getaddresses(msg.get_all("To"))] == [received.recipient]
        for header in ("Cc", "Bcc"):
            assert msg[header] is None
    names = {m.recipient: m.message["To"].addresses[0].display_name for m in sent}
    assert names == {
        "ann@example.com": "Ann Smith",
        "bob@example.com": "",
        "dana@example.com": "Dana Ünal-Øberg",
        "Fred.Jones@example.com": 'Fred "the Bold" Jones, Jr.',
    }


def test_every_message_is_multipart_alternative_text_first_html_last(sent):
    for received in sent:
        msg = received.message
        assert msg.get_content_type() == "multipart/alternative"
        parts = list(msg.iter_parts())
        assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
        assert all(p.get_content_charset() == "utf-8" for p in parts)
        assert msg["MIME-Version"] == "1.0"


def test_message_ids_are_unique_and_single_instance_headers_appear_once(sent):
    ids = [m.message["Message-ID"] for m in sent]
    assert len(set(ids)) == len(sent)
    assert all(re.fullmatch(r"<one\.[^@<>\s]+@example\.org>", i) for i in ids)
    for received in sent:
        for header in (
            "From",
            "To",
            "Subject",
            "Date",
            "Message-ID",
            "List-Id",
            "List-Unsubscribe",
            "List-Unsubscribe-Post",
            "MIME-Version",
            "Content-Type",
            "Reply-To",
        ):
            assert len(received.message.get_all(header, [])) == 1, header


def project_slug(received: Received) -> str:
    """The issue slug, as the Message-ID names it: <slug.….@domain>."""
    return str(received.message["Message-ID"]).strip("<>").split(".")[0]


def test_list_headers_and_one_click_unsubscribe(sent):
    for received in sent:
        msg = received.message
        assert msg["List-Id"] == LIST_ID
        assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        https, mailto = unsubscribe_urls(received)
        assert https.startswith("https://news.example.org/unsubscribe?t=")
        token = parse_qs(urlparse(https).query)["t"][0]
        # the mailto carries the same opaque token: `dispatch bounces` knows who and which list
        assert mailto == f"mailto:unsubscribe@example.org?subject=unsubscribe%20{token}"
        assert msg["Reply-To"] == "editors@example.org"


def test_the_unsubscribe_token_names_this_recipient_and_this_list(sent):
    for received in sent:
        https = unsubscribe_urls(received)[0]
        (token,) = parse_qs(urlparse(https).query)["t"]
        claims = claims_of(token)
        assert (claims.email, claims.issue) == (received.recipient, project_slug(received))
        assert claims.list_name == "list"  # the list sent to: the CSV's name
        assert received.recipient.encode() not in token.encode()  # opaque
        # and the same link is in both bodies, so a clip or a text client still shows it
        msg = received.message
        assert https in msg.get_body(("plain",)).get_content()
        assert f'href="{https}"' in msg.get_body(("html",)).get_content()


def test_personal_fields_are_substituted_and_no_merge_token_is_left(sent):
    greetings = {m.recipient: m.message.get_body(("plain",)).get_content() for m in sent}
    assert "Hi Ann Smith," in greetings["ann@example.com"]
    assert "Hi there," in greetings["bob@example.com"]  # no name: the fallback
    assert "Hi Dana Ünal-Øberg," in greetings["dana@example.com"]
    html = {m.recipient: m.message.get_body(("html",)).get_content() for m in sent}
    assert "Hi Fred &quot;the Bold&quot; Jones, Jr.," in html["Fred.Jones@example.com"]
    for received in sent:
        assert b"XDISPATCHMERGE" not in received.data.upper()
        for part in received.message.walk():
            if not part.is_multipart():
                assert "XDISPATCHMERGE" not in part.get_content().upper()


def test_lines_respect_the_mime_limits(sent):
    for received in sent:
        head, body = received.data.split(b"\r\n\r\n", 1)
        assert all(len(line) <= 998 for line in received.data.split(b"\r\n"))
        assert all(len(line) <= 76 for line in body.split(b"\r\n")), (
            "quoted-printable lines are at most 76"
        )
        assert b"\n" not in received.data.replace(b"\r\n", b"")
        assert head.isascii()


def test_the_bodies_decode_exactly_to_the_rendered_issue(project: Project):
    prepared = campaign.prepare(project.issue_dir)
    data = prepared.messages.render(
        "ann@example.com", {"name": "Ann"}, "<x@example.org>", "Thu, 08 Jan 2026 10:00:00 +0000"
    )
    import email
    import email.policy

    msg = email.message_from_bytes(data, policy=email.policy.default)
    from dispatch_mail.render import render_issue

    plain = render_issue(prepared.project, prepared.issue, personal=False).text
    text = msg.get_body(("plain",)).get_content().replace("\r\n", "\n")
    # the personal copy differs from the web copy only in the merged fields
    assert (
        text.replace("Hi Ann,", "Hi there,").split("Unsubscribe:")[0]
        == plain.replace("\r\n", "\n").split("Unsubscribe:")[0]
    )


def test_a_long_non_ascii_name_is_folded_into_valid_header_lines(project: Project):
    prepared = campaign.prepare(project.issue_dir)
    name = "Žofie Ūrsula Łukasiewicz-Ørsted " * 14  # under the 500-character field limit
    data = prepared.messages.render(
        "zofie@example.com", {"name": name}, "<x@example.org>", "Thu, 08 Jan 2026 10:00:00 +0000"
    )
    head = data.split(b"\r\n\r\n", 1)[0]
    # a URI cannot be folded: only a line that is one <URI> may pass 78
    assert all(
        len(line) <= 78 or line.startswith(b"List-Unsubscribe:") or line.strip().startswith(b"<")
        for line in head.split(b"\r\n")
    )
    import email
    import email.policy
    from email.header import decode_header, make_header

    msg = email.message_from_bytes(data, policy=email.policy.compat32)
    # RFC 2047: the blank between adjacent encoded-words is not part of the name. (The stdlib's
    # address parser keeps it, even for the stdlib's own folding, so decode the words themselves.)
    from dispatch_mail.mail.headers import DISPLAY_NAME_MAX  # the name is cut there

    assert (
        str(make_header(decode_header(msg["To"])))
        == f"{' '.join(name.split())[:DISPLAY_NAME_MAX].rstrip()} <zofie@example.com>"
    )


def test_without_a_mailto_only_the_https_url_is_offered(project: Project, server: SmtpServer):
    project.mailto = False
    project.write()
    assert invoke(*send_args(project, server, project.csv(PEOPLE[:1]))).exit_code == 0
    (received,) = server.messages
    assert unsubscribe_urls(received) == [unsubscribe_urls(received)[0]]
    assert unsubscribe_urls(received)[0].startswith("https://")


def test_a_non_ascii_subject_is_an_encoded_word(project: Project, server: SmtpServer):
    project.subject = "Ça va? Ünïcode news — issue 1"
    project.write()
    assert invoke(*send_args(project, server, project.csv(PEOPLE[:1]))).exit_code == 0
    (received,) = server.messages
    assert b"=?utf-8?" in received.data.split(b"\r\n\r\n")[0]
    assert received.message["Subject"] == "Ça va? Ünïcode news — issue 1"


def test_test_copies_are_marked_and_prefixed(project: Project, server: SmtpServer):
    result = invoke(
        "send",
        str(project.issue_dir),
        "--to",
        "me@example.com",
        "--to",
        "Me@EXAMPLE.com",
        "--test",
        *server.cli_args(),
    )
    assert result.exit_code == 0, result.output
    assert "test copies: 2 sent" in result.output
    messages = sorted(server.messages, key=lambda m: m.recipient)
    assert [m.recipient for m in messages] == ["editors@example.org", "me@example.com"]
    for received in messages:
        msg = received.message
        assert msg["X-Dispatch-Test"] == "yes"
        assert msg["Subject"] == "[TEST] Example Weekly, issue 1"
        assert b"XDISPATCHMERGE" not in received.data.upper()
        (token,) = parse_qs(urlparse(unsubscribe_urls(received)[0]).query)["t"]
        claims = claims_of(token)
        assert (claims.email, claims.list_name) == (received.recipient, "test")


def test_real_sends_carry_no_test_marks(sent):
    for received in sent:
        assert received.message["X-Dispatch-Test"] is None
        assert received.message["Subject"] == "Example Weekly, issue 1"


def test_list_id_is_the_same_for_the_token_and_the_header(project: Project):
    prepared = campaign.prepare(project.issue_dir)
    assert isinstance(prepared.messages, PersonalMessages)
    assert prepared.messages.list_id == list_id(prepared.project) == LIST_ID


def test_every_merge_field_gets_a_value_for_each_recipient(project: Project):
    prepared = campaign.prepare(project.issue_dir)
    values = prepared.messages.merge_values("ann@example.com", {"name": "Ann"})
    assert tuple(values) == MERGE_FIELDS
    assert values["email"] == "ann@example.com" and values["greeting"] == "Hi Ann,"


# ------------------------------------------------------------------ DKIM
@pytest.fixture(scope="module")
def dkim_key():
    pytest.importorskip("dkim")
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    import base64

    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)
    return private, record


def dkim_project(project: Project, private: bytes, tmp_path) -> Project:
    key_file = tmp_path / "dkim.pem"
    key_file.write_bytes(private)
    project.extra = f"dkim:\n  domain: example.org\n  selector: news2026\n  key_file: {key_file}\n"
    project.write()
    return project


def test_dkim_signatures_verify_and_cover_the_unsubscribe_headers(
    project, server, dkim_key, tmp_path
):
    import dkim

    private, record = dkim_key
    dkim_project(project, private, tmp_path)
    assert invoke(*send_args(project, server, project.csv(PEOPLE))).exit_code == 0
    asked: list[bytes] = []

    def dns(name: bytes, timeout: int = 5) -> bytes | None:
        asked.append(name)
        return record if name == b"news2026._domainkey.example.org." else None

    assert len(server.messages) == 4
    for received in server.messages:
        assert dkim.verify(received.data, dnsfunc=dns), received.recipient
        signature = received.message["DKIM-Signature"]
        tags = dict(
            t.strip().split("=", 1) for t in "".join(str(signature).split()).split(";") if t.strip()
        )
        signed = [h.strip().lower() for h in tags["h"].split(":")]
        assert {
            "list-unsubscribe",
            "list-unsubscribe-post",
            "from",
            "to",
            "subject",
            "message-id",
            "list-id",
        } <= set(signed)
        assert tags["d"] == "example.org" and tags["s"] == "news2026"
        # a receiver that finds the unsubscribe headers altered must not trust them
        tampered = received.data.replace(
            b"List-Unsubscribe-Post: List-Unsubscribe=One-Click",
            b"List-Unsubscribe-Post: List-Unsubscribe=Two-Clicks",
        )
        assert not dkim.verify(tampered, dnsfunc=dns)
    assert set(asked) == {b"news2026._domainkey.example.org."}


def test_a_dkim_key_that_is_not_a_key_is_refused_before_sending(project, server, tmp_path):
    pytest.importorskip("dkim")
    dkim_project(
        project,
        b"-----BEGIN RSA PRIVATE KEY-----\nbm90IGEga2V5\n-----END RSA PRIVATE KEY-----\n",
        tmp_path,
    )
    result = invoke(*send_args(project, server, project.csv(PEOPLE)))
    assert result.exit_code == 2, result.output
    assert "DKIM" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert server.handler.count() == 0
    assert not project.journal.exists()
