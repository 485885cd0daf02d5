"""Whatever a subscriber's row holds, their To line is one a relay takes, shown as typed.

The attacks: a name of 500 quotes doubled under escaping into a 1,023-octet line
("500 Line too long"); ESC, BEL and bidi overrides in a name; a name that is an
RFC 2047 encoded-word, so clients showed "Support" instead of what was typed.
Sent through ``dispatch send`` to a real SMTP server (aiosmtpd refuses a line
over 1,000 octets as a relay does), and as a property over any name and address.
"""

from __future__ import annotations

import email.policy
import re
import unicodedata
from email.header import decode_header, make_header
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from dispatch_mail.errors import ContentError, RecipientDataError
from dispatch_mail.mail.headers import DISPLAY_NAME_MAX
from dispatch_mail.mail.personal import PersonalMessages
from dispatch_mail.mail.tokens import TokenKeys
from dispatch_mail.project.loader import load
from dispatch_mail.project.schema import validate_email
from dispatch_mail.publish.build import build_issue
from dispatch_mail.render import render_issue
from tests.helpers.project import Project
from tests.helpers.send import SECRET, invoke, send_args
from tests.helpers.smtp_server import Received, SmtpServer

DATE = "Thu, 08 Jan 2026 10:00:00 +0000"
BIDI = {chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))}
WORD = r"=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?="  # an RFC 2047 encoded-word
ENCODED_RUN = re.compile(rf"{WORD}(?:\s+{WORD})*")
ADJACENT = re.compile(rf"{WORD}\s+{WORD}")


# ------------------------------------------------------------------ what a client should show
def shown(name: str) -> str:
    """The display name a recipient's row should give: an independent statement of the rule.

    Whitespace runs become one space; control characters (Unicode category Cc:
    C0, DEL, C1), lone surrogates, U+2028/2029 and the bidi embeddings,
    overrides and isolates are dropped; at most DISPLAY_NAME_MAX characters.
    """
    kept = "".join(
        c
        for c in " ".join(name.split())
        if unicodedata.category(c) not in ("Cc", "Cs") and c not in BIDI | {"\u2028", "\u2029"}
    )
    return " ".join(kept.split())[:DISPLAY_NAME_MAX].rstrip()


def parse(data: bytes) -> EmailMessage:
    message = BytesParser(policy=email.policy.default).parsebytes(data)
    assert isinstance(message, EmailMessage)
    return message


def to_field(data: bytes) -> list[bytes]:
    """The To field's lines as sent (folded)."""
    lines = data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    start = next(i for i, line in enumerate(lines) if line.startswith(b"To:"))
    end = next(
        (i for i in range(start + 1, len(lines)) if not lines[i].startswith(b" ")), len(lines)
    )
    return lines[start:end]


def assert_addressed(data: bytes, address: str, name: str) -> None:
    """Every line within 998 octets, the To lines within 78, and the name reads back as shown()."""
    assert all(len(line) <= 998 for line in data.split(b"\r\n"))
    for line in to_field(data):
        assert len(line) <= 78 or line in (f" <{address}>".encode(), f"To: {address}".encode())
    message = parse(data)
    (mailbox,) = message["To"].addresses
    assert message["To"].defects == () and mailbox.addr_spec == address
    expected = shown(name)
    raw = b" ".join(line.strip() for line in to_field(data))[3:].decode("ascii")
    runs = ENCODED_RUN.findall(raw)
    for run in runs:  # RFC 2047 6.2: the blanks between adjacent encoded-words are not text
        assert str(make_header(decode_header(run))) in expected
    if mailbox.display_name != expected:
        # the stdlib's address parser keeps those blanks: the one difference it may show
        assert any(ADJACENT.search(run) for run in runs), mailbox.display_name
        assert "".join(mailbox.display_name.split()) == "".join(expected.split())


# ------------------------------------------------------------------ the send, end to end
def send(project: Project, server: SmtpServer, rows: list[tuple[str, str]]) -> dict[str, Received]:
    result = invoke(*send_args(project, server, project.csv(rows)))
    assert result.exit_code == 0, result.output + result.stderr
    return {m.recipient: m for m in server.messages}


def test_names_of_500_quotes_or_backslashes_are_sent_within_the_line_limits(
    project: Project, server: SmtpServer
):
    rows = [("ann@example.com", "Ann Smith")]
    rows += [(f"quotes{i}@example.com", '"' * 500) for i in range(3)]
    rows += [(f"backslashes{i}@example.com", "\\" * 500) for i in range(3)]
    rows += [("mixed@example.com", 'a"\\' * 166)]
    sent = send(project, server, rows)
    assert sorted(sent) == sorted(address for address, _ in rows)  # nobody refused
    for address, name in rows:
        assert_addressed(sent[address].data, address, name)
    assert sent["quotes0@example.com"].message["To"].addresses[0].display_name.count('"') == 200


def test_control_and_bidi_characters_never_reach_a_header(project: Project, server: SmtpServer):
    rows = [
        ("esc@example.com", "Ann\x1b[31m Smith\x07"),
        ("c1@example.com", "Bob\x9b2J\x7f Jones\x85Jr"),
        ("bidi@example.com", "Eve \u202emoc.lapyap\u202c \u2066x\u2069"),
        ("separators@example.com", "Dana\u2028\u2029Ünal"),
    ]
    sent = send(project, server, rows)
    names = {a: m.message["To"].addresses[0].display_name for a, m in sent.items()}
    assert names == {
        "esc@example.com": "Ann[31m Smith",
        "c1@example.com": "Bob2J Jones Jr",
        "bidi@example.com": "Eve moc.lapyap x",
        "separators@example.com": "Dana Ünal",
    }
    for address, name in rows:
        head = sent[address].data.split(b"\r\n\r\n", 1)[0]
        assert not any(b < 0x20 and b not in (0x0D, 0x0A) or b == 0x7F for b in head)
        assert_addressed(sent[address].data, address, name)
        # the greeting in the body is the same text, without its controls
        text = sent[address].message.get_body(("plain",)).get_content()
        assert not set(text) & ({chr(c) for c in range(0x20)} - {"\n", "\r"} | {"\x7f", "\x9b"})
    assert "Hi Ann[31m Smith," in sent["esc@example.com"].message.get_body(("plain",)).get_content()


ENCODED_WORD_NAMES = [
    "=?utf-8?b?U3VwcG9ydA==?=",
    "=?utf-8?q?PayPal_Security?= <security@paypal.com>",
    "Support =?utf-8?q?Team?=",
    '"=?utf-8?b?U3VwcG9ydA==?="',
    "=?iso-8859-1?q?caf=E9?= crème",
]


def test_a_name_that_is_an_encoded_word_is_shown_as_typed(project: Project, server: SmtpServer):
    rows = [(f"ew{i}@example.com", name) for i, name in enumerate(ENCODED_WORD_NAMES)]
    sent = send(project, server, rows)
    for address, name in rows:
        mailbox = sent[address].message["To"].addresses[0]
        assert mailbox.display_name == name  # as typed, by a client that decodes encoded-words
        assert mailbox.addr_spec == address  # and the address is still the only address
        assert_addressed(sent[address].data, address, name)


def test_the_built_eml_shows_an_encoded_word_project_name_as_typed(tmp_path: Path):
    project = Project(tmp_path / "news", subject="Read =?utf-8?q?Support?= now")
    config = project.root / "dispatch.yaml"
    text = config.read_text(encoding="utf-8").replace(
        "name: Example Weekly\nsender:\n  name: Example Weekly",
        'name: "=?utf-8?b?U3VwcG9ydA==?="\nsender:\n  name: "=?utf-8?q?PayPal?= \\"Security\\""',
    )
    config.write_text(text, encoding="utf-8")
    eml = parse(build_issue(project.issue_dir, write=False).eml)
    assert eml["To"].addresses[0].display_name == "=?utf-8?b?U3VwcG9ydA==?="
    assert eml["From"].addresses[0].display_name == '=?utf-8?q?PayPal?= "Security"'
    assert str(eml["List-Id"]).startswith("=?utf-8?b?U3VwcG9ydA==?= <")
    assert eml["Subject"] == "Read =?utf-8?q?Support?= now"


# ------------------------------------------------------------------ any name, any address
@pytest.fixture(scope="module")
def messages(tmp_path_factory: pytest.TempPathFactory) -> PersonalMessages:
    return personal_messages(Project(tmp_path_factory.mktemp("safety") / "news"))


def personal_messages(project: Project) -> PersonalMessages:
    settings_, issue = load(project.issue_dir)
    rendered = render_issue(settings_, issue, personal=True)
    keys = TokenKeys.from_secrets(SECRET.encode())
    return PersonalMessages(settings_, issue, rendered, keys=keys)


NAMES = st.one_of(
    st.text(max_size=600),
    st.text(alphabet=st.sampled_from('"\\ ,<>@=?:;()[]a\x1b\x07\x7f\x9b\u202e\t'), max_size=600),
    st.text(alphabet=st.characters(min_codepoint=0x80, max_codepoint=0x10FFFF), max_size=400),
    st.builds(
        lambda word, name: f"=?utf-8?{word}?{name}?=",
        st.sampled_from(["b", "q", "B", "Q"]),
        st.text(max_size=60),
    ),
)


@settings(max_examples=300, deadline=None)
@given(name=NAMES, address=st.emails())
def test_any_name_gives_lines_within_the_limits_and_reads_back(
    messages: PersonalMessages, name: str, address: str
):
    assume(validate_email(address) is None)  # the audience never lets any other through
    data = messages.render(address, {"name": name}, "<x.1@example.org>", DATE)
    assert_addressed(data, address, name)


@settings(max_examples=200, deadline=None)
@given(name=st.text(max_size=100), address=st.text(max_size=300))
def test_any_address_is_sent_or_refused_as_that_recipients_fault(
    messages: PersonalMessages, name: str, address: str
):
    try:
        data = messages.render(address, {"name": name}, "<x.1@example.org>", DATE)
    except RecipientDataError as exc:
        assert exc.recipient == address and str(exc)
        return
    assert_addressed(data, address, name)


# ------------------------------------------------------------------ unsendable: whose fault
def test_an_address_that_is_none_fails_that_recipient_alone(messages: PersonalMessages):
    for address in ("not-an-address", "ann@example.com\r\nBcc: x@example.org", ""):
        with pytest.raises(RecipientDataError, match="not a usable address") as caught:
            messages.render(address, {"name": "Ann"}, "<x.1@example.org>", DATE)
        assert caught.value.recipient == address
    assert messages.render("ann@example.com", {"name": "Ann"}, "<x.1@example.org>", DATE)


def long_url_project(root: Path, length: int) -> Project:
    project = Project(root)
    config = project.root / "dispatch.yaml"
    text = config.read_text(encoding="utf-8")
    url = "https://news.example.org/unsubscribe?t={token}"
    long_url = f"https://news.example.org/{'u' * length}?t={{token}}"
    config.write_text(text.replace(url, long_url), encoding="utf-8")
    return project


def test_an_address_too_long_for_the_unsubscribe_line_fails_that_recipient_alone(tmp_path: Path):
    messages = personal_messages(long_url_project(tmp_path / "news", 650))
    long_address = f"{'a' * 64}@{'b' * 63}.{'c' * 63}.{'d' * 57}.org"
    assert validate_email(long_address) is None
    with pytest.raises(RecipientDataError, match="List-Unsubscribe") as caught:
        messages.render(long_address, {"name": "Ann"}, "<x.1@example.org>", DATE)
    assert caught.value.recipient == long_address and "998" in str(caught.value)
    data = messages.render("ann@example.com", {"name": "Ann"}, "<x.1@example.org>", DATE)
    assert max(len(line) for line in data.split(b"\r\n")) <= 998


def test_an_unsubscribe_url_too_long_for_anyone_is_refused_before_sending(tmp_path: Path):
    with pytest.raises(ContentError, match="List-Unsubscribe.*998"):
        personal_messages(long_url_project(tmp_path / "news", 1000))
