"""VERP return paths: the envelope sender names the recipient, so each bounce maps back exactly.

``return_path: bounces+{token}@example.org`` gives each message its own MAIL FROM.
The token is short enough for a local part (at most 64 octets, RFC 5321) and
case-insensitive, as some MTAs fold a local part's case: base32 of the issue's
tag, the list's tag, the recipient's row in that send's journal and a MAC under
a key derived from the unsubscribe secret. It names a journal row, not an
address: a bounce is read back through the journal of that issue and list.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass

from dispatch_mail.errors import UsageError

TOKEN = "{token}"
_TAG = 4  # bytes of the issue's and of the list's digest
_MAC = 6
_RAW = _TAG * 2 + 4 + _MAC  # 18 bytes → 29 base32 characters
_TEXT = re.compile(r"[a-z2-7]{29}")


@dataclass(frozen=True)
class VerpAddress:
    """What a VERP token says: which issue, which list, which row of its journal."""

    issue_tag: bytes
    list_tag: bytes
    row: int

    def matches(self, issue: str, list_name: str) -> bool:
        return self.issue_tag == tag_of(issue) and self.list_tag == tag_of(list_name)


def tag_of(name: str) -> bytes:
    return hashlib.sha256(name.encode("utf-8")).digest()[:_TAG]


def _key(secret: bytes) -> bytes:
    return hmac.new(secret, b"dispatch/verp/v1", hashlib.sha256).digest()


def check_return_path(template: str) -> str | None:
    """The problem with a ``return_path`` setting, or None when it can be used."""
    local, at, domain = template.rpartition("@")
    if not at or not local or not domain or "." not in domain:
        return "must be an address, e.g. 'bounces+{token}@example.org'"
    if TOKEN in domain or template.count(TOKEN) > 1:
        return "'{token}' may appear once, in the part before '@'"
    if len(local.replace(TOKEN, "x" * 29)) > 64:
        return "the part before '@' would pass 64 characters (RFC 5321)"
    if re.search(r"[\s<>()\[\],;:\\\"]", template.replace(TOKEN, "")):
        return "must be a plain address (no spaces, quotes or brackets)"
    return None


def envelope_sender(
    template: str | None, sender: str, secret: bytes, issue: str, list_name: str, row: int
) -> str:
    """The MAIL FROM for one message: the From address, the fixed return path, or its VERP form."""
    if not template:
        return sender
    if TOKEN not in template:
        return template
    return template.replace(TOKEN, make_verp_token(secret, issue, list_name, row))


def make_verp_token(secret: bytes, issue: str, list_name: str, row: int) -> str:
    if not 0 <= row < 2**32:
        raise UsageError(f"a journal row of {row} cannot be named in a VERP address")
    body = tag_of(issue) + tag_of(list_name) + row.to_bytes(4, "big")
    mac = hmac.new(_key(secret), body, hashlib.sha256).digest()[:_MAC]
    return base64.b32encode(body + mac).decode("ascii").rstrip("=").lower()


def read_verp(secret: bytes, template: str, address: str) -> VerpAddress | None:
    """The VERP token of ``address`` under the ``return_path`` template, or None.

    None for an address of another shape, a token of another length or alphabet, or
    one whose MAC fails (forged, or made with another secret).
    """
    if TOKEN not in template:
        return None
    before, after = template.split(TOKEN)
    text = address.strip().strip("<>").lower()
    before, after = before.lower(), after.lower()
    if not (text.startswith(before) and text.endswith(after)) or len(text) < len(before + after):
        return None
    token = text[len(before) : len(text) - len(after)]
    if not _TEXT.fullmatch(token):
        return None
    raw = base64.b32decode(token.upper() + "===")
    if len(raw) != _RAW:
        return None
    body, mac = raw[:-_MAC], raw[-_MAC:]
    expected = hmac.new(_key(secret), body, hashlib.sha256).digest()[:_MAC]
    if not hmac.compare_digest(mac, expected):
        return None
    return VerpAddress(body[:_TAG], body[_TAG : 2 * _TAG], int.from_bytes(body[2 * _TAG :], "big"))
