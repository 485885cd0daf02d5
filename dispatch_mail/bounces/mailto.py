"""Unsubscribe requests by mail: the List-Unsubscribe mailto (RFC 2369) and people who write in.

Our List-Unsubscribe offers ``mailto:ADDR?subject=unsubscribe%20TOKEN`` after the
https URL; the token is the same sealed one, so a request that carries it names
its list and address exactly, whoever forwards it. A request without a genuine
token unsubscribes its From address from every list: the address asked itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import Message

from dispatch_mail.bounces.message import addresses, body_text, header

_TOKEN = re.compile(r"\bunsubscribe\s+([A-Za-z0-9_-]{16,4096})", re.IGNORECASE)
_RECIPIENT_HEADERS = ("To", "Cc", "Delivered-To", "X-Original-To", "Envelope-To")


@dataclass(frozen=True)
class UnsubscribeRequest:
    """Who wrote to the unsubscribe address, and the token they sent back (if any)."""

    sender: str  # the From address, '' when it has none
    token: str | None


def read_unsubscribe_request(message: Message, mailto: str | None) -> UnsubscribeRequest | None:
    """The request when the message was written to ``mailto``; None for any other message."""
    if not mailto or mailto.strip().lower() not in addresses(message, *_RECIPIENT_HEADERS):
        return None
    senders = addresses(message, "From")
    match = _TOKEN.search(header(message, "Subject")) or _TOKEN.search(body_text(message, 20_000))
    return UnsubscribeRequest(senders[0] if senders else "", match.group(1) if match else None)
