"""Reading a relay's JSON strictly: bounded, typed, and every problem a WebhookRejected.

Everything in a webhook comes from outside. These helpers make one rule for all four
relays: a field is the type the relay documents or the request is malformed, strings
are capped, and an address is one plausible mailbox, never a header injection.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from dispatch_mail.errors import WebhookRejected

MAX_BODY = 1024 * 1024  # a relay batches at most a few hundred events; more is not a webhook
MAX_EVENTS = 1000
MAX_TEXT = 2000  # a diagnostic longer than this is cut, not stored whole
_ADDRESS = re.compile(r"^[^@\s<>\"\x00-\x1f\x7f]{1,64}@[^@\s<>\"\x00-\x1f\x7f]{1,255}$")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
# make_message_id: <slug.kind.n.random@domain>, the slug in message_id_part's alphabet
_DISPATCH_MESSAGE_ID = re.compile(
    r"^<?(?P<slug>[A-Za-z0-9_-]+)\.[A-Za-z]+\.\d+\.[0-9a-f]{12}@[^<>\s]+>?$"
)


def decode(body: bytes, provider: str) -> Any:
    """The body as JSON, or a malformed-request rejection (never a traceback)."""
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise WebhookRejected(
            f"the body is not JSON ({type(error).__name__})", provider=provider, reason="malformed"
        ) from None


def malformed(provider: str, message: str) -> WebhookRejected:
    return WebhookRejected(message, provider=provider, reason="malformed")


def mapping(value: Any, provider: str, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise malformed(provider, f"{what} is not an object")
    return value


def text(value: Any, provider: str, what: str, *, required: bool = True) -> str:
    """A string field (numbers accepted, as relays send ids both ways), cleaned and capped."""
    if value is None or value == "":
        if required:
            raise malformed(provider, f"{what} is missing")
        return ""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise malformed(provider, f"{what} is not a string")
    cleaned = _CONTROL.sub(" ", str(value)).strip()
    return cleaned[:MAX_TEXT]


def address(value: Any, provider: str, what: str) -> str:
    """One mailbox address as the relay reports it (``Name <a@b>`` and ``rfc822;`` tolerated)."""
    raw = text(value, provider, what)
    raw = raw.removeprefix("rfc822;").strip()
    if raw.endswith(">") and "<" in raw:
        raw = raw[raw.rindex("<") + 1 : -1].strip()
    if not _ADDRESS.match(raw):
        raise malformed(provider, f"{what} is not an email address")
    return raw


def issue_of(message_id: str | None) -> str | None:
    """The issue slug in a Message-ID dispatch made (``make_message_id``); None for others."""
    if not message_id:
        return None
    found = _DISPATCH_MESSAGE_ID.match(message_id.strip())
    return found.group("slug") if found else None


def detail(*parts: object) -> str:
    """The status code and diagnostic, joined and capped for the store."""
    joined = " ".join(str(p).strip() for p in parts if p not in (None, ""))
    return _CONTROL.sub(" ", joined)[:MAX_TEXT]


def moment(value: Any, now: float) -> float:
    """When the relay says the event happened (epoch or ISO 8601), never later than ``now``."""
    at: float | None = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        at = float(value)
    elif isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            parsed = None
        if parsed is not None:
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=UTC)
            at = parsed.timestamp()
    if at is None or at != at or at <= 0:  # missing, unreadable or NaN: when we heard of it
        return now
    return min(at, now)
