"""Signed unsubscribe tokens: the URL alone must say who and which list, and be hard to forge.

RFC 8058's one-click POST carries nothing but the URL, so the token holds the
list and the address, with an HMAC-SHA256 tag under a secret that only the
sender and the unsubscribe endpoint know (from the environment, never a file
in the repository).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from pathlib import Path

from dispatch_mail.errors import UsageError

SECRET_ENV = "DISPATCH_UNSUBSCRIBE_SECRET"
TAG_BYTES = 16


def load_secret(secret_file: Path | None = None, *, required: bool = True) -> bytes | None:
    """The token secret from a file the user names, or from DISPATCH_UNSUBSCRIBE_SECRET."""
    if secret_file is not None:
        try:
            value = secret_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise UsageError(
                f"cannot read the secret file {secret_file}: {exc.strerror or exc}"
            ) from None
    else:
        value = os.environ.get(SECRET_ENV, "").strip()
    if not value:
        if required:
            raise UsageError(
                f"set {SECRET_ENV}: the unsubscribe links are signed with it, "
                "and your unsubscribe endpoint verifies them with the same secret",
                hint="secret_file",
            )
        return None
    if len(value) < 16:
        raise UsageError(
            f"the unsubscribe secret is too short ({len(value)} characters; use at least 16)"
        )
    return value.encode("utf-8")


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def make_token(secret: bytes, list_id: str, email: str) -> str:
    payload = f"{list_id}\n{email}".encode()
    tag = hmac.new(secret, payload, hashlib.sha256).digest()[:TAG_BYTES]
    return f"{_b64(payload)}.{_b64(tag)}"


def verify_token(secret: bytes, token: str) -> tuple[str, str] | None:
    """(list id, email) when the token is genuine, else None. For the unsubscribe endpoint."""
    try:
        payload_text, tag_text = token.split(".", 1)
        payload, tag = _unb64(payload_text), _unb64(tag_text)
    except (ValueError, TypeError):
        return None
    expected = hmac.new(secret, payload, hashlib.sha256).digest()[:TAG_BYTES]
    if not hmac.compare_digest(tag, expected):
        return None
    list_id, _, email = payload.decode("utf-8", "replace").partition("\n")
    return list_id, email
