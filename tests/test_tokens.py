"""Unsubscribe tokens: the URL alone names the recipient and the list, and cannot be forged."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatch_mail.errors import UsageError
from dispatch_mail.mail.tokens import SECRET_ENV, load_secret, make_token, verify_token

SECRET = b"0123456789abcdef0123456789abcdef"
LIST = "Example Weekly <example-weekly.example.org>"


def test_a_token_verifies_to_its_list_and_address():
    token = make_token(SECRET, LIST, "ann@example.com")
    assert verify_token(SECRET, token) == (LIST, "ann@example.com")


def test_a_token_is_url_safe():
    token = make_token(SECRET, LIST, "a+b/c=d@example.com")
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")


def test_another_secret_does_not_verify():
    token = make_token(SECRET, LIST, "ann@example.com")
    assert verify_token(b"another secret of some length", token) is None


def test_a_token_for_someone_else_cannot_be_made_by_editing_the_payload():
    token = make_token(SECRET, LIST, "ann@example.com")
    _, tag = token.split(".")
    forged_payload = (
        base64.urlsafe_b64encode(f"{LIST}\nbob@example.com".encode()).rstrip(b"=").decode()
    )
    assert verify_token(SECRET, f"{forged_payload}.{tag}") is None


@pytest.mark.parametrize(
    "token", ["", ".", "abc", "abc.", ".abc", "a.b.c", "é.é", "!!!.???", "YQ.AAAA"]
)
def test_garbage_is_refused_not_raised(token):
    assert verify_token(SECRET, token) is None


def test_a_truncated_tag_is_refused():
    token = make_token(SECRET, LIST, "ann@example.com")
    assert verify_token(SECRET, token[:-2]) is None


@settings(max_examples=40)
@given(st.text(min_size=1, max_size=80).filter(lambda s: "\n" not in s), st.emails())
def test_any_list_and_address_round_trip(list_id, address):
    assert verify_token(SECRET, make_token(SECRET, list_id, address)) == (list_id, address)


@settings(max_examples=100)
@given(st.text(max_size=200))
def test_verify_never_raises(text):
    verify_token(SECRET, text)


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
