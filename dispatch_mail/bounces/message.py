"""Return mail as parsed messages: bounded, tolerant of any MIME, and named by evidence.

Everything in a return mailbox comes from outside: a bounce can be forged, a
spammer can write anything. A message is read to at most MAX_MESSAGE bytes (the
parts a bounce is recognised by come first), parsed with ``email.policy.default``,
and every header read goes through ``header()``, which never raises: a message
whose structure cannot be read is "unknown" and stays where it is.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import re
from collections.abc import Iterator
from email.message import EmailMessage, Message
from email.utils import getaddresses

MAX_MESSAGE = 4 * 1024 * 1024  # bytes of one message read; a returned newsletter is ~100 KB
MAX_PARTS = 200  # MIME parts walked in one message
MAX_HEADER = 2000  # characters of one header value kept
_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_INLINE_COPY = re.compile(
    r"^(-+ This is a copy of the message.*-+|--- Below this line is a copy of the message\.)\s*$",
    re.MULTILINE,
)
_SMTP_CODE = re.compile(r"(?<![\d.])([245])\d\d(?=[ -]|$)")


def parse(raw: bytes) -> EmailMessage | None:
    """The message, or None when not even its headers can be read."""
    try:
        message = email.message_from_bytes(raw[:MAX_MESSAGE], policy=email.policy.default)
    except Exception:  # the parser is not meant to raise, but hostile input is hostile
        return None
    return message if isinstance(message, EmailMessage) else None


def evidence_id(message: Message | None, raw: bytes) -> str:
    """What names this return message: its Message-ID, or a digest of its bytes when it has none."""
    message_id = header(message, "Message-ID") if message is not None else ""
    bare = message_id.strip().strip("<>")
    if bare and len(bare) <= 250 and not any(c.isspace() for c in bare):
        return f"<{bare}>"
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def header(message: Message | None, name: str) -> str:
    """A header's text ('' when absent or unreadable), whitespace folded, length bounded."""
    if message is None:
        return ""
    try:
        value = message.get(name)
        text = "" if value is None else str(value)
    except Exception:  # a malformed header the default policy cannot parse
        try:
            raw = message.get_all(name) or []
            text = str(raw[0]) if raw else ""
        except Exception:
            return ""
    return " ".join(text.split())[:MAX_HEADER]


def addresses(message: Message | None, *names: str) -> list[str]:
    """The bare addresses of the named headers, in order, lower-cased, each once."""
    found: list[str] = []
    for name in names:
        text = header(message, name)
        if not text:
            continue
        try:
            pairs = getaddresses([text])
        except Exception:
            continue
        for _, address in pairs:
            address = address.strip().strip("<>").lower()
            if "@" in address and address not in found:
                found.append(address)
    return found


def walk(message: Message) -> Iterator[Message]:
    """The message's parts, depth first, at most MAX_PARTS of them."""
    try:
        for count, part in enumerate(message.walk()):
            if count >= MAX_PARTS:
                return
            yield part
    except Exception:
        return


def content_type(part: Message) -> str:
    try:
        return part.get_content_type()
    except Exception:
        return "text/plain"


def report_type(message: Message) -> str:
    """The ``report-type`` of a multipart/report ('' for any other message)."""
    if content_type(message) != "multipart/report":
        return ""
    try:
        return str(message.get_param("report-type", "") or "").strip().lower()
    except Exception:
        return ""


def text_of(part: Message) -> str:
    """A part's decoded text ('' when it cannot be decoded)."""
    try:
        payload = part.get_payload(decode=True)
    except Exception:
        return ""
    if not isinstance(payload, bytes):
        inner = part.get_payload()
        if isinstance(inner, list) and inner and isinstance(inner[0], Message):
            return inner[0].as_string() if len(inner) == 1 else ""
        return inner if isinstance(inner, str) else ""
    try:
        charset = part.get_content_charset() or "utf-8"
        return payload.decode(charset, errors="replace")
    except LookupError:
        return payload.decode("utf-8", errors="replace")


def body_text(message: Message, limit: int = 200_000) -> str:
    """The text/plain parts before any returned message: what a human-readable bounce says."""
    chunks: list[str] = []
    for part in walk(message):
        kind = content_type(part)
        if kind in ("message/rfc822", "text/rfc822-headers"):
            break  # the returned message starts: its words are not the bounce's
        if kind == "text/plain" and not part.is_multipart():
            chunks.append(text_of(part))
        if sum(map(len, chunks)) > limit:
            break
    if not chunks and not message.is_multipart():
        chunks.append(text_of(message))
    return "\n".join(chunks)[:limit]


def returned_headers(message: Message) -> Message | None:
    """The headers of the message that came back (message/rfc822 or text/rfc822-headers part)."""
    for part in walk(message):
        kind = content_type(part)
        if kind in ("message/rfc822", "message/global"):
            inner = part.get_payload()
            if isinstance(inner, list) and inner and isinstance(inner[0], Message):
                return inner[0]
        if kind in ("text/rfc822-headers", "message/global-headers"):
            text = text_of(part)
            return _headers_from(text)
    if not message.is_multipart():  # Exim's and qmail's plain bounces quote it inline
        match = _INLINE_COPY.search(text_of(message))
        if match:
            return _headers_from(match.string[match.end() :])
    return None


def _headers_from(text: str) -> Message | None:
    try:
        return email.message_from_string(text.lstrip("\r\n "), policy=email.policy.default)
    except Exception:
        return None


def status_in(text: str) -> str:
    """The first enhanced status code (RFC 3463, e.g. '5.1.1') in ``text``, or ''."""
    match = _STATUS.search(text)
    return ".".join(match.groups()) if match else ""


def smtp_class(text: str) -> str:
    """The class ('4' or '5') of the first SMTP reply code in ``text``, or ''."""
    match = _SMTP_CODE.search(text)
    return match.group(1) if match else ""
