"""An unsubscribe token has one spelling: anything else is "invalid", and nothing raises.

The attack: base64 decoding that skipped characters outside its alphabet and
took padding, so a token with ``!!~~`` or ``==`` appended still opened (one
token, many URLs), and opening ``None`` raised AttributeError in the endpoint.
The tokens here are the ones a real send puts in its messages.
"""

from __future__ import annotations

import base64
import datetime
import string
from urllib.parse import parse_qs, urlparse

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatch_mail.mail.tokens import MAX_TOKEN, TokenKeys
from tests.helpers.project import Project
from tests.helpers.send import SECRET, invoke, send_args
from tests.helpers.smtp_server import SmtpServer

KEYS = TokenKeys.from_secrets(SECRET.encode())
ALPHABET = string.ascii_letters + string.digits + "-_"
DAY = datetime.date(2026, 3, 1)
TOKEN = KEYS.seal("subscribers", "2026-q1", "ann@example.com", issued=DAY)


def opens(token: object) -> bool:
    return KEYS.open(token, lifetime_days=400, today=DAY) is not None


def sent_token(project: Project, server: SmtpServer) -> str:
    """The token of a message as a real send delivered it."""
    result = invoke(*send_args(project, server, project.csv([("ann@example.com", "Ann")])))
    assert result.exit_code == 0, result.output
    (received,) = server.messages
    url = str(received.message["List-Unsubscribe"]).split("<", 1)[1].split(">", 1)[0]
    (token,) = parse_qs(urlparse(url).query)["t"]
    return token


def test_a_sent_token_opens_and_its_variants_do_not(project: Project, server: SmtpServer):
    token = sent_token(project, server)
    claims = KEYS.open(token, lifetime_days=400)
    assert claims is not None and claims.email == "ann@example.com"
    variants = [
        token + "!!~~",
        token + "==",
        token + "=",
        token + "\n",
        token + " ",
        " " + token,
        token[:10] + "~" + token[10:],
        token[:10] + "." + token[10:],
        token.replace("-", "+").replace("_", "/"),  # the other base64 alphabet
        token + ".",
        token + "A",
        token[:-1],
        token[:-4],
        "A" + token,
    ]
    for variant in variants:
        if variant != token:
            assert KEYS.open(variant, lifetime_days=400) is None, variant


def test_only_the_canonical_spelling_of_the_last_character_opens():
    """When the last character carries unused bits, another value there is another spelling."""
    raw = base64.urlsafe_b64decode(TOKEN + "=" * (-len(TOKEN) % 4))
    twins = [
        TOKEN[:-1] + c
        for c in ALPHABET
        if c != TOKEN[-1]
        and base64.urlsafe_b64decode(TOKEN[:-1] + c + "=" * (-len(TOKEN) % 4)) == raw
    ]
    unused_bits = (6 * len(TOKEN)) % 8
    assert len(twins) == 2**unused_bits - 1
    assert [opens(twin) for twin in twins] == [False] * len(twins)


def test_every_token_length_with_unused_bits_is_spelled_once():
    for n in range(1, 40):  # addresses of every length: each residue of the base64 length
        token = KEYS.seal("l", "q1", "a" * n + "@b.c", issued=DAY)
        assert opens(token)
        for c in ALPHABET:
            twin = token[:-1] + c
            if twin != token:
                assert not opens(twin)


@pytest.mark.parametrize(
    "token",
    [None, 0, 1.5, b"bytes", bytearray(b"x"), [TOKEN], {"t": TOKEN}, object(), TOKEN.encode()],
    ids=repr,
)
def test_anything_but_a_string_is_invalid_not_an_error(token: object):
    assert not opens(token)


@pytest.mark.parametrize(
    "token",
    ["", ".", "..", "A", "AAAA", "A" * 30, "é" * 40, "A" * (MAX_TOKEN + 4), "\x00" * 40, "\ud800"],
)
def test_empty_short_huge_and_odd_strings_are_invalid(token: str):
    assert not opens(token)


def test_the_longest_token_seal_writes_is_within_the_limit():
    longest = KEYS.seal("l" * 255, "i" * 255, "a" * 64 + "@" + "d" * 189, issued=DAY)
    assert len(longest) <= MAX_TOKEN and opens(longest)


def test_another_version_byte_is_invalid():
    raw = bytearray(base64.urlsafe_b64decode(TOKEN + "=" * (-len(TOKEN) % 4)))
    raw[0] ^= 0x02
    assert not opens(base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode())


@settings(max_examples=400)
@given(
    st.one_of(
        st.text(max_size=300),
        st.from_regex(r"[A-Za-z0-9_=~!.-]{0,160}", fullmatch=True),
    )
)
def test_random_strings_never_raise_and_never_open(text: str):
    assert not opens(text)


@settings(max_examples=300)
@given(st.emails(), st.data())
def test_any_single_character_change_of_a_valid_token_fails(address: str, data: st.DataObject):
    token = KEYS.seal("subscribers", "2026-q1", address, issued=DAY)
    assert opens(token)
    at = data.draw(st.integers(0, len(token) - 1), label="at")
    char = data.draw(
        st.one_of(st.sampled_from(ALPHABET + ".=~!+/ "), st.characters()).filter(
            lambda c: c != token[at]
        ),
        label="char",
    )
    assert not opens(token[:at] + char + token[at + 1 :])
    assert not opens(token[:at] + char + token[at:])
    assert not opens(token[:at] + token[at + 1 :])


@settings(max_examples=200)
@given(st.data())
def test_any_bit_flip_of_the_bytes_fails(data: st.DataObject):
    raw = bytearray(base64.urlsafe_b64decode(TOKEN + "=" * (-len(TOKEN) % 4)))
    at = data.draw(st.integers(0, len(raw) * 8 - 1), label="bit")
    raw[at // 8] ^= 1 << (at % 8)
    assert not opens(base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode())
