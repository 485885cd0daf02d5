"""Sealed unsubscribe tokens: the URL alone says who, which list and which issue, and shows none.

RFC 8058's one-click POST carries nothing but the URL, so the token carries the
list, the issue and the address, encrypted and authenticated (AES-SIV, an AEAD)
under a key derived from a secret that only the sender and the unsubscribe
endpoint know (from the environment or a file the user names, never a file in
the repository). No database is written at send time: the endpoint needs only
the key (docs/unsubscribe.md says why).

A token is unpadded base64url of::

    version (1) | key id (2) | AES-SIV( issued day (2) | len(list) (1) | list
                                        | len(issue) (1) | issue | email )

with the version and key id as associated data, so they cannot be edited
either. AES-SIV is deterministic: the same recipient's retry on the same day
gets the same bytes, which leaks only that two tokens are equal. ``open``
takes exactly the spelling ``seal`` writes and nothing else, and never raises.

``cryptography`` is imported when keys are made, not when this module is:
`dispatch build` never needs it.
"""

from __future__ import annotations

import base64
import datetime
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from dispatch_mail.errors import UsageError
from dispatch_mail.project.wording import plural

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESSIV

SECRET_ENV = "DISPATCH_UNSUBSCRIBE_SECRET"
PREVIOUS_SECRET_ENV = "DISPATCH_UNSUBSCRIBE_PREVIOUS_SECRET"
MIN_SECRET_BYTES = 32  # as long as the SHA-256 output: RFC 2104's floor for an HMAC key
MIN_SECRET_SYMBOLS = 8  # distinct bytes: "aaaa…" or "abababab…" is no secret at any length
MAX_SECRET_FILE = 4096  # a secret file past this is the wrong file (or /dev/urandom itself)
MAX_PREVIOUS_SECRETS = 16  # a rotation keeps a few old keys, not a history
MAX_TOKEN = 2048  # characters: above the longest token seal can write (about 1,070)
MAX_NAME = 255  # UTF-8 bytes of a list name or an issue slug (one length byte each)
VERSION = 1
KEY_ID_BYTES = 2
SIV_TAG = 16
EPOCH = datetime.date(2020, 1, 1)  # the issued day is counted from here, in 2 bytes (to 2199)
_HEADER = 1 + KEY_ID_BYTES
_MIN_TOKEN_BYTES = _HEADER + SIV_TAG + 2 + 1 + 1 + 1  # day, two lengths, an address of one byte
_B64URL = re.compile(r"[A-Za-z0-9_-]*")
# what a secret typed, pasted or made by `openssl rand -hex 32` may hold besides text
_TEXT_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# HKDF info labels: one secret, a separate key for each purpose
_SEAL_INFO = b"dispatch/unsubscribe/aes-siv/v1"
_KEY_ID_INFO = b"dispatch/unsubscribe/key-id/v1"


# ------------------------------------------------------------------ the secret
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
    return _strong(secret, "the unsubscribe secret")


def load_previous_secrets(previous_file: Path | None = None) -> list[bytes]:
    """Rotated-out secrets whose tokens still open: DISPATCH_UNSUBSCRIBE_PREVIOUS_SECRET and a file.

    The file holds one text secret per line (blank lines are skipped); each is
    read and checked like the current secret.
    """
    found: list[bytes] = []
    from_env = _secret_bytes(os.fsencode(os.environ.get(PREVIOUS_SECRET_ENV, "")))
    if from_env:
        found.append(_strong(from_env, f"the previous unsubscribe secret in {PREVIOUS_SECRET_ENV}"))
    if previous_file is not None:
        raw = _read_secret_file(previous_file)
        for number, line in enumerate(raw.split(b"\n"), 1):
            secret = _secret_bytes(line)
            if secret:
                where = f"the previous unsubscribe secret on line {number} of {previous_file}"
                found.append(_strong(secret, where))
    if len(found) > MAX_PREVIOUS_SECRETS:
        raise UsageError(
            f"{len(found)} previous unsubscribe secrets: keep at most {MAX_PREVIOUS_SECRETS} "
            "(the ones whose links are younger than unsubscribe.token_days)"
        )
    return found


def _strong(secret: bytes, what: str) -> bytes:
    if len(secret) < MIN_SECRET_BYTES:
        raise UsageError(
            f"{what} is too short ({plural(len(secret), 'byte')}; use at least "
            f"{MIN_SECRET_BYTES}, e.g. the output of `openssl rand -hex 32`)"
        )
    if len(set(secret)) < MIN_SECRET_SYMBOLS:
        raise UsageError(
            f"{what} is too predictable (only {len(set(secret))} different "
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


# ------------------------------------------------------------------ the token
@dataclass(frozen=True)
class TokenClaims:
    """What a genuine token says: who asked to leave which list, from which issue, and when."""

    list_name: str
    issue: str
    email: str
    key_id: str  # the key it was sealed under: the current one or a previous one
    issued: datetime.date


@dataclass(frozen=True)
class _Key:
    key_id: bytes
    aead: AESSIV


@dataclass(frozen=True)
class TokenKeys:
    """The current key, which seals, and the previous ones, which still open."""

    secret: bytes = field(repr=False)  # the current raw secret (other derivations, e.g. VERP)
    key_id: str  # short id of the current key, derived from it (never reveals it)
    _keys: tuple[_Key, ...] = field(repr=False, compare=False)  # current first

    @classmethod
    def load(
        cls,
        secret_file: Path | None = None,
        *,
        previous_file: Path | None = None,
        required: bool = True,
    ) -> TokenKeys | None:
        """The keys of ``load_secret`` and ``load_previous_secrets``; None if optional and unset."""
        current = load_secret(secret_file, required=required)
        if current is None:
            return None
        return cls.from_secrets(current, load_previous_secrets(previous_file))

    @classmethod
    def from_secrets(cls, current: bytes, previous: Sequence[bytes] = ()) -> TokenKeys:
        keys = tuple(_derive(secret) for secret in (current, *previous) if secret)
        if not keys:
            raise ValueError("TokenKeys needs a secret")
        return cls(current, keys[0].key_id.hex(), keys)

    def seal(
        self, list_name: str, issue: str, email: str, *, issued: datetime.date | None = None
    ) -> str:
        """The token for one recipient of one issue on one list, under the current key."""
        day = (issued or datetime.date.today()) - EPOCH
        name, slug, address = (text.encode("utf-8") for text in (list_name, issue, email))
        if not 0 <= day.days < 1 << 16:
            raise ValueError(f"a token cannot be dated {issued}")
        if len(name) > MAX_NAME or len(slug) > MAX_NAME or not name or not address:
            raise ValueError(
                "a token needs a list name and an issue of 1–255 bytes, and an address"
            )
        plain = b"".join(
            (
                day.days.to_bytes(2, "big"),
                bytes([len(name)]),
                name,
                bytes([len(slug)]),
                slug,
                address,
            )
        )
        key = self._keys[0]
        header = bytes([VERSION]) + key.key_id
        return _b64(header + key.aead.encrypt(plain, [header]))

    def open(
        self, token: object, *, lifetime_days: int, today: datetime.date | None = None
    ) -> TokenClaims | None:
        """What the token says when it is genuine and younger than ``lifetime_days``, else None.

        For the unsubscribe endpoint, which gets whatever a client sends: a token
        under an unknown key, expired, edited, truncated, padded, re-encoded,
        oversized, or not a str at all is None; nothing raises.
        """
        raw = decode_token(token)
        if raw is None:
            return None
        header, sealed = raw[:_HEADER], raw[_HEADER:]
        for key in self._keys:
            if key.key_id != header[1:]:
                continue
            plain = _decrypt(key.aead, sealed, header)
            claims = _claims(plain, key.key_id.hex()) if plain is not None else None
            if claims is not None:
                if claims.issued + datetime.timedelta(days=lifetime_days) < (
                    today or datetime.date.today()
                ):
                    return None
                return claims
        return None


def decode_token(token: object) -> bytes | None:
    """The token's bytes when it is spelled as ``seal`` spells one (not yet authenticated)."""
    if not isinstance(token, str) or len(token) > MAX_TOKEN:
        return None
    raw = _unb64(token)
    if raw is None or len(raw) < _MIN_TOKEN_BYTES or raw[0] != VERSION:
        return None
    return raw


def token_key_id(token: object) -> str | None:
    """The key id a token claims (for logs: a token is a credential and is never logged)."""
    raw = decode_token(token)
    return raw[1:_HEADER].hex() if raw is not None else None


def _derive(secret: bytes) -> _Key:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.ciphers.aead import AESSIV
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    def hkdf(length: int, info: bytes) -> bytes:
        return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info).derive(secret)

    return _Key(hkdf(KEY_ID_BYTES, _KEY_ID_INFO), AESSIV(hkdf(64, _SEAL_INFO)))  # AES-256-SIV


def _decrypt(aead: AESSIV, sealed: bytes, header: bytes) -> bytes | None:
    from cryptography.exceptions import InvalidTag

    try:
        return aead.decrypt(sealed, [header])
    except InvalidTag:
        return None


def _claims(plain: bytes, key_id: str) -> TokenClaims | None:
    """The plaintext's fields; None when it is not what ``seal`` writes."""
    if len(plain) < 5:
        return None
    day = int.from_bytes(plain[:2], "big")
    name_end = 3 + plain[2]
    if len(plain) < name_end + 2:
        return None
    slug_end = name_end + 1 + plain[name_end]
    if len(plain) < slug_end + 1 or plain[2] == 0:
        return None
    try:
        name, slug, address = (
            part.decode("utf-8")
            for part in (plain[3:name_end], plain[name_end + 1 : slug_end], plain[slug_end:])
        )
    except UnicodeDecodeError:
        return None
    return TokenClaims(name, slug, address, key_id, EPOCH + datetime.timedelta(days=day))


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes | None:
    """Strict unpadded base64url: its alphabet only, and only the canonical spelling."""
    if not _B64URL.fullmatch(text) or len(text) % 4 == 1:
        return None
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    # unused low bits of the last character must be zero: one token, one spelling
    return raw if _b64(raw) == text else None
