"""Unsubscribe tokens: the URL alone names the recipient, the list and the issue, and shows none.

The token is sealed (AES-SIV): it opens only under a key we hold, for as long as
``unsubscribe.token_days`` allows, and nothing it carries can be read or changed.
"""

from __future__ import annotations

import base64
import datetime
import itertools
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatch_mail.errors import UsageError
from dispatch_mail.mail.tokens import (
    PREVIOUS_SECRET_ENV,
    SECRET_ENV,
    TokenClaims,
    TokenKeys,
    load_secret,
)

SECRET = b"0123456789abcdef0123456789abcdef"
OLD_SECRET = b"an older secret, rotated out in 2026"
DAY = datetime.date(2026, 3, 1)
KEYS = TokenKeys.from_secrets(SECRET)
LIFETIME = 400


def opened(keys: TokenKeys, token: object, today: datetime.date = DAY) -> TokenClaims | None:
    return keys.open(token, lifetime_days=LIFETIME, today=today)


def b64_decodings(token: str) -> list[bytes]:
    """The token's bytes read every way a curious person might: urlsafe, standard, each offset."""
    found = []
    for start in range(4):
        text = token[start:]
        for decode in (base64.urlsafe_b64decode, base64.b64decode):
            try:
                found.append(decode(text + "=" * (-len(text) % 4)))
            except ValueError:
                pass
    return found


def test_a_token_opens_to_its_list_issue_address_and_day():
    token = KEYS.seal("subscribers", "2026-q1", "ann@example.com", issued=DAY)
    assert opened(KEYS, token) == TokenClaims(
        "subscribers", "2026-q1", "ann@example.com", KEYS.key_id, DAY
    )


def test_a_token_is_url_safe_and_short():
    """It goes into List-Unsubscribe, which must fold under 998 octets; a typical one is 86 long."""
    token = KEYS.seal("subscribers", "2026-q1", "a+b/c=d@example.com", issued=DAY)
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    typical = KEYS.seal("subscribers", "2026-q1", "firstname.lastname@example.com", issued=DAY)
    assert len(typical) <= 100
    # the longest address there is, with long names: well inside the line (the send fails
    # the rare recipient whose line would still be too long, alone)
    longest = KEYS.seal("l" * 60, "i" * 60, "a" * 64 + "@" + "d" * 189, issued=DAY)
    assert len(longest) < 998 - len("List-Unsubscribe: <https://news.example.org/unsubscribe/>")


def test_the_token_shows_neither_the_address_nor_the_list():
    email, list_name = "ann.example@example.com", "subscribers"
    token = KEYS.seal(list_name, "2026-q1", email, issued=DAY)
    for needle in (email, "ann", "example", list_name, "2026-q1"):
        assert needle not in token
        for decoded in b64_decodings(token):
            assert needle.encode() not in decoded


def test_the_same_recipient_gets_the_same_token_and_lists_apart_get_different_ones():
    one = KEYS.seal("subscribers", "2026-q1", "ann@example.com", issued=DAY)
    assert one == KEYS.seal("subscribers", "2026-q1", "ann@example.com", issued=DAY)  # a retry
    others = {
        KEYS.seal("partners", "2026-q1", "ann@example.com", issued=DAY),
        KEYS.seal("subscribers", "2026-q2", "ann@example.com", issued=DAY),
        KEYS.seal("subscribers", "2026-q1", "bob@example.com", issued=DAY),
    }
    assert one not in others and len(others) == 3


def test_pieces_of_two_genuine_tokens_do_not_make_a_third():
    """Swapping the header, the tag or the ciphertext between tokens opens to nothing."""
    a = base64.urlsafe_b64decode(
        KEYS.seal("subscribers", "q1", "ann@example.com", issued=DAY) + "=="
    )
    b = base64.urlsafe_b64decode(KEYS.seal("partners", "q1", "ann@example.com", issued=DAY) + "==")
    header, tag = 3, 3 + 16
    spliced = [
        a[:tag] + b[tag:],  # a's tag on b's ciphertext
        b[:tag] + a[tag:],
        a[:header] + b[header:tag] + a[tag:],
        a[: tag + 4] + b[tag + 4 :],
    ]
    for raw in spliced:
        if raw not in (a, b):
            assert opened(KEYS, base64.urlsafe_b64encode(raw).rstrip(b"=").decode()) is None


def test_another_secret_does_not_open_it():
    token = KEYS.seal("subscribers", "q1", "ann@example.com", issued=DAY)
    assert opened(TokenKeys.from_secrets(b"another secret of some length, 32+"), token) is None


def test_the_key_id_is_short_stable_and_no_part_of_the_secret():
    assert KEYS.key_id == TokenKeys.from_secrets(SECRET).key_id
    assert KEYS.key_id != TokenKeys.from_secrets(OLD_SECRET).key_id
    assert len(KEYS.key_id) == 4 and KEYS.key_id not in SECRET.hex()
    assert SECRET.decode() not in repr(KEYS) and KEYS.secret == SECRET


def test_a_token_sealed_under_a_previous_secret_opens_until_it_expires():
    old = TokenKeys.from_secrets(OLD_SECRET)
    token = old.seal("subscribers", "q1", "ann@example.com", issued=DAY)
    rotated = TokenKeys.from_secrets(SECRET, [OLD_SECRET])
    claims = opened(rotated, token)
    assert claims is not None and claims.key_id == old.key_id != rotated.key_id
    last_day = DAY + datetime.timedelta(days=LIFETIME)
    assert opened(rotated, token, today=last_day) == claims
    assert opened(rotated, token, today=last_day + datetime.timedelta(days=1)) is None
    assert opened(KEYS, token) is None  # once the old secret is dropped, its tokens are gone
    assert opened(rotated, rotated.seal("l", "i", "a@b.c", issued=DAY)) is not None  # current seals


def test_a_token_of_the_current_key_expires_too():
    token = KEYS.seal("subscribers", "q1", "ann@example.com", issued=DAY)
    assert KEYS.open(token, lifetime_days=30, today=DAY + datetime.timedelta(days=30)) is not None
    assert KEYS.open(token, lifetime_days=30, today=DAY + datetime.timedelta(days=31)) is None


@settings(max_examples=60)
@given(
    st.text(min_size=1, max_size=60),
    st.text(max_size=60),
    st.emails(),
    st.dates(datetime.date(2020, 1, 1), datetime.date(2199, 1, 1)),
)
def test_any_list_issue_address_and_day_round_trip(list_name, issue, address, day):
    token = KEYS.seal(list_name, issue, address, issued=day)
    claims = KEYS.open(token, lifetime_days=LIFETIME, today=day)
    assert claims == TokenClaims(list_name, issue, address, KEYS.key_id, day)


def test_seal_refuses_what_cannot_be_carried():
    for args in (("", "q1", "a@b.c"), ("l", "q1", ""), ("l" * 256, "q1", "a@b.c")):
        with pytest.raises(ValueError):
            KEYS.seal(*args, issued=DAY)
    with pytest.raises(ValueError):
        KEYS.seal("l", "q1", "a@b.c", issued=datetime.date(2019, 12, 31))


@pytest.mark.parametrize("token", ["", "abc", "é", "!!!", "AAAA", "A" * 40, "A" * 3000])
def test_garbage_is_refused_not_raised(token):
    assert opened(KEYS, token) is None


@settings(max_examples=100)
@given(st.text(max_size=200))
def test_open_never_raises(text):
    assert opened(KEYS, text) is None


# ------------------------------------------------------------------ the secrets
def test_the_secret_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv(SECRET_ENV, "  0123456789abcdef0123456789abcdef  ")
    assert load_secret() == b"0123456789abcdef0123456789abcdef"


def test_a_missing_secret_is_a_usage_error_unless_optional(monkeypatch):
    monkeypatch.delenv(SECRET_ENV, raising=False)
    with pytest.raises(UsageError, match=SECRET_ENV) as caught:
        load_secret()
    # a library message names no command-line option; the CLI adds its own from the hint
    assert "--" not in str(caught.value) and caught.value.hint == "secret_file"
    assert load_secret(required=False) is None
    assert TokenKeys.load(required=False) is None
    with pytest.raises(UsageError, match=SECRET_ENV):
        TokenKeys.load()


def test_a_short_secret_is_refused(monkeypatch):
    monkeypatch.setenv(SECRET_ENV, "short")
    with pytest.raises(UsageError, match="too short"):
        load_secret()


def test_a_secret_file_wins_over_the_environment(monkeypatch, tmp_path: Path):
    monkeypatch.setenv(SECRET_ENV, "0123456789abcdef0123456789abcdef-from-env")
    path = tmp_path / "secret"
    path.write_text("0123456789abcdef0123456789abcdef-from-file\n")
    assert load_secret(path) == b"0123456789abcdef0123456789abcdef-from-file"
    with pytest.raises(UsageError, match="cannot read"):
        load_secret(tmp_path / "missing")


def test_previous_secrets_come_from_the_environment_and_a_file(monkeypatch, tmp_path: Path):
    monkeypatch.setenv(SECRET_ENV, SECRET.decode())
    monkeypatch.setenv(PREVIOUS_SECRET_ENV, OLD_SECRET.decode())
    older = b"the oldest secret still honoured, 2025"
    previous = tmp_path / "previous"
    previous.write_bytes(b"\n" + older + b"\r\n\n")
    keys = TokenKeys.load(previous_file=previous)
    assert keys is not None and keys.secret == SECRET
    for secret in (OLD_SECRET, older):
        token = TokenKeys.from_secrets(secret).seal("l", "q1", "ann@example.com", issued=DAY)
        assert opened(keys, token) is not None
    monkeypatch.delenv(PREVIOUS_SECRET_ENV)
    token = TokenKeys.from_secrets(OLD_SECRET).seal("l", "q1", "ann@example.com", issued=DAY)
    assert opened(TokenKeys.load(previous_file=previous), token) is None  # type: ignore[arg-type]


def test_a_weak_previous_secret_is_refused_where_it_is(monkeypatch, tmp_path: Path):
    monkeypatch.setenv(SECRET_ENV, SECRET.decode())
    previous = tmp_path / "previous"
    previous.write_text(OLD_SECRET.decode() + "\n" + "a" * 40 + "\n")
    with pytest.raises(UsageError, match=f"line 2 of {previous} is too predictable"):
        TokenKeys.load(previous_file=previous)
    monkeypatch.setenv(PREVIOUS_SECRET_ENV, "short")
    with pytest.raises(UsageError, match=f"{PREVIOUS_SECRET_ENV} is too short"):
        TokenKeys.load()


def test_many_tokens_are_all_distinct():
    tokens = {
        KEYS.seal(list_name, issue, f"r{n}@example.com", issued=DAY)
        for list_name, issue, n in itertools.product(("a", "b"), ("q1", "q2"), range(50))
    }
    assert len(tokens) == 200
