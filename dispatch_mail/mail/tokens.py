"""Signed unsubscribe tokens: the URL alone must say who and which list, and be hard to forge.

RFC 8058's one-click POST carries nothing but the URL, so the token holds the
list and the address, with an HMAC-SHA256 tag under a secret that only the
sender and the unsubscribe endpoint know (from the environment or a file the
user names, never a file in the repository).

A token is ``base64url(list id, LF, address) "." base64url(tag)``, unpadded.
``verify_token`` takes exactly the spelling ``make_token`` writes and nothing
else: no padding, no characters outside the alphabet, no second spelling of
the same bytes, so one token has one form and anything else is "invalid".
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
from pathlib import Path

from dispatch_mail.errors import UsageError

SECRET_ENV = "DISPATCH_UNSUBSCRIBE_SECRET"
TAG_BYTES = 16
TAG_TEXT = 22  # base64url characters of TAG_BYTES, unpadded
MIN_SECRET_BYTES = 32  # as long as the SHA-256 output: RFC 2104's floor for an HMAC key
MIN_SECRET_SYMBOLS = 8  # distinct bytes: "aaaa…" or "abababab…" is no secret at any length
MAX_SECRET_FILE = 4096  # a secret file past this is the wrong file (or /dev/urandom itself)
MAX_TOKEN = 4096  # far above any real token (a 254-character address, a long list id)
_B64URL = re.compile(r"[A-Za-z0-9_-]*")
# what a secret typed, pasted or made by `openssl rand -hex 32` may hold besides text
_TEXT_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def load_secret(secret_file: Path | None = None, *, required: bool = True) -> bytes | None:
    """The token secret from a file the user names, else from DISPATCH_UNSUBSCRIBE_SECRET.

    The unsubscribe endpoint must read it the same way:

    - text (valid UTF-8 with no control character but tab, CR and LF) loses its
      leading and trailing spaces, tabs, CRs and LFs, such as the newline an
      editor adds, and its UTF-8 bytes are the secret;
    - anything else, such as 32 bytes from /dev/urandom, is the secret byte for
      byte, as it is in the file.

    The environment's value is the bytes the process was given, read the same
    way. Either way the secret must be at least MIN_SECRET_BYTES bytes.
    """
    if secret_file is not None:
        raw = _read_secret_file(secret_file)
    else:
        raw = os.fsencode(os.environ.get(SECRET_ENV, ""))  # the bytes as given, even if not UTF-8
    secret = _secret_bytes(raw)
    if not secret:
        if required:
            raise UsageError(
                f"set {SECRET_ENV}: the unsubscribe links are signed with it, "
                "and your unsubscribe endpoint verifies them with the same secret",
                hint="secret_file",
            )
        return None
    if len(secret) < MIN_SECRET_BYTES:
        raise UsageError(
            f"the unsubscribe secret is too short ({len(secret)} bytes; use at least "
            f"{MIN_SECRET_BYTES}, e.g. the output of `openssl rand -hex 32`)"
        )
    if len(set(secret)) < MIN_SECRET_SYMBOLS:
        raise UsageError(
            f"the unsubscribe secret is too predictable (only {len(set(secret))} different "
            "byte values); use random bytes, e.g. the output of `openssl rand -hex 32`"
        )
    return secret


def _read_secret_file(path: Path) -> bytes:
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_SECRET_FILE + 1)
    except OSError as exc:
        raise UsageError(f"cannot read the secret file {path}: {exc.strerror or exc}") from None
    if len(raw) > MAX_SECRET_FILE:
        raise UsageError(
            f"the secret file {path} holds more than {MAX_SECRET_FILE} bytes: is it the right file?"
        )
    return raw


def _secret_bytes(raw: bytes) -> bytes:
    """Text loses its surrounding whitespace; binary is kept as it is (see ``load_secret``)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw
    if _TEXT_CONTROLS.search(text):
        return raw
    return text.strip(" \t\r\n").encode("utf-8")


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes | None:
    """Strict unpadded base64url: its alphabet only, and only the canonical spelling."""
    if not _B64URL.fullmatch(text) or len(text) % 4 == 1:
        return None
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    # unused low bits of the last character must be zero: one token, one spelling
    return raw if _b64(raw) == text else None


def make_token(secret: bytes, list_id: str, email: str) -> str:
    payload = f"{list_id}\n{email}".encode()
    tag = hmac.new(secret, payload, hashlib.sha256).digest()[:TAG_BYTES]
    return f"{_b64(payload)}.{_b64(tag)}"


def verify_token(secret: bytes, token: object) -> tuple[str, str] | None:
    """(list id, email) when the token is genuine, else None; never raises on any token.

    For the unsubscribe endpoint, which gets whatever a client sends: None, an
    empty or huge string, a token with padding or junk appended are all None.
    """
    if not isinstance(token, str) or len(token) > MAX_TOKEN or token.count(".") != 1:
        return None
    payload_text, tag_text = token.split(".")
    if len(tag_text) != TAG_TEXT:
        return None
    payload, tag = _unb64(payload_text), _unb64(tag_text)
    if not payload or tag is None:
        return None
    expected = hmac.new(secret, payload, hashlib.sha256).digest()[:TAG_BYTES]
    if not hmac.compare_digest(tag, expected):
        return None
    try:
        list_id, newline, email = payload.decode("utf-8").partition("\n")
    except UnicodeDecodeError:  # not make_token's: signed by someone else with the secret
        return None
    return (list_id, email) if newline else None
