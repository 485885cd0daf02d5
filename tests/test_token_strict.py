"""An unsubscribe token has one spelling: anything else is "invalid", and nothing raises.

The attack: base64 decoding that skipped characters outside its alphabet and
took padding, so a token with ``!!~~`` or ``==`` appended still verified (one
token, many URLs), and ``verify_token(secret, None)`` raised AttributeError in
the endpoint. The tokens here are the ones a real send puts in its messages.
"""

from __future__ import annotations

import base64
import string
from urllib.parse import parse_qs, urlparse

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatch_mail.mail.tokens import TAG_TEXT, make_token, verify_token
from tests.helpers.project import Project
from tests.helpers.send import SECRET, invoke, send_args
from tests.helpers.smtp_server import SmtpServer

KEY = SECRET.encode()
LIST = "Example Weekly <example-weekly.example.org>"
ALPHABET = string.ascii_letters + string.digits + "-_"
TOKEN = make_token(KEY, LIST, "ann@example.com")


def sent_token(project: Project, server: SmtpServer) -> str:
    """The token of a message as a real send delivered it."""
    result = invoke(*send_args(project, server, project.csv([("ann@example.com", "Ann")])))
    assert result.exit_code == 0, result.output
    (received,) = server.messages
    url = str(received.message["List-Unsubscribe"]).split("<", 1)[1].split(">", 1)[0]
    (token,) = parse_qs(urlparse(url).query)["t"]
    return token


def test_a_sent_token_verifies_and_its_variants_do_not(project: Project, server: SmtpServer):
    token = sent_token(project, server)
    assert verify_token(KEY, token) == (LIST, "ann@example.com")
    payload, tag = token.split(".")
    variants = [
        token + "!!~~",
        token + "==",
        token + "=",
        token + "\n",
        token + " ",
        " " + token,
        f"{payload}==.{tag}",
        f"{payload}.{tag}==",
        f"{payload}!.{tag}",
        f"{payload}.{tag[:10]}~{tag[10:]}",
        token.replace("-", "+").replace("_", "/"),  # the other base64 alphabet
        f"{payload}.{tag}.",
        f"{payload}..{tag}",
        f"{payload}.{tag}A",
        f"{payload}.{tag[:-1]}",
    ]
    for variant in variants:
        if variant != token:
            assert verify_token(KEY, variant) is None, variant


def test_only_the_canonical_spelling_of_the_tag_verifies():
    """The tag's last character carries 4 unused bits: another value there is another spelling."""
    payload, tag = TOKEN.split(".")
    assert len(tag) == TAG_TEXT
    value = base64.urlsafe_b64decode(tag + "==")
    twins = [
        f"{payload}.{tag[:-1]}{c}"
        for c in ALPHABET
        if c != tag[-1] and base64.urlsafe_b64decode(tag[:-1] + c + "==") == value
    ]
    assert len(twins) == 15  # 22 characters carry 132 bits: the same 16 bytes, 16 spellings
    assert [verify_token(KEY, twin) for twin in twins] == [None] * 15


@pytest.mark.parametrize(
    "token",
    [None, 0, 1.5, b"bytes", bytearray(b"x"), [TOKEN], {"t": TOKEN}, object(), TOKEN.encode()],
    ids=repr,
)
def test_anything_but_a_string_is_invalid_not_an_error(token: object):
    assert verify_token(KEY, token) is None


@pytest.mark.parametrize(
    "token",
    ["", ".", "..", "a.", ".a" + "A" * 21, "A.AAAA", "é." + "A" * 22, "A" * 5000, "\x00.\x00"],
)
def test_empty_short_huge_and_odd_strings_are_invalid(token: str):
    assert verify_token(KEY, token) is None


def test_an_empty_payload_with_its_own_genuine_tag_is_invalid():
    import hashlib
    import hmac

    tag = hmac.new(KEY, b"", hashlib.sha256).digest()[:16]
    forged = "." + base64.urlsafe_b64encode(tag).rstrip(b"=").decode()
    assert verify_token(KEY, forged) is None


@settings(max_examples=500)
@given(
    st.one_of(
        st.text(max_size=300),
        st.from_regex(r"[A-Za-z0-9_=~!-]{0,120}\.[A-Za-z0-9_=-]{0,30}", fullmatch=True),
    )
)
def test_random_strings_never_raise_and_never_verify(text: str):
    assert verify_token(KEY, text) is None


@settings(max_examples=300)
@given(
    st.emails(),
    st.data(),
)
def test_any_single_character_change_of_a_valid_token_fails(address: str, data: st.DataObject):
    token = make_token(KEY, LIST, address)
    assert verify_token(KEY, token) == (LIST, address)
    at = data.draw(st.integers(0, len(token) - 1), label="at")
    char = data.draw(
        st.one_of(st.sampled_from(ALPHABET + ".=~!+/ "), st.characters()).filter(
            lambda c: c != token[at]
        ),
        label="char",
    )
    changed = token[:at] + char + token[at + 1 :]
    inserted = token[:at] + char + token[at:]
    removed = token[:at] + token[at + 1 :]
    assert verify_token(KEY, changed) is None
    assert verify_token(KEY, inserted) is None
    assert verify_token(KEY, removed) is None
