"""Mailgun's event webhooks: failed (permanent or temporary), complained, unsubscribed.

Mailgun puts its signature in the body: HMAC-SHA256 of ``timestamp + token`` with the
webhook signing key, compared in constant time. The timestamp must be within 15 minutes
of now, and a token is accepted once (``TokenMemory``), so a captured request cannot be
replayed; the event id as evidence makes a genuine retry change nothing either.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from dispatch_mail.endpoint.webhooks.payload import (
    address,
    decode,
    detail,
    issue_of,
    malformed,
    mapping,
    moment,
    text,
)
from dispatch_mail.endpoint.webhooks.secrets import WebhookSecrets
from dispatch_mail.errors import WebhookRejected
from dispatch_mail.suppression.records import WEBHOOK_SOURCE, EventKind, ReturnEvent

PROVIDER = "mailgun"
SOURCE = WEBHOOK_SOURCE + PROVIDER
TOLERANCE = 15 * 60  # seconds either side of now, as Mailgun advises


class TokenMemory:
    """Tokens accepted within the tolerance window; older ones fail the timestamp check anyway."""

    def __init__(self, limit: int = 100_000):
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._limit = limit
        self._lock = threading.Lock()

    def first_use(self, token: str, timestamp: float, now: float) -> bool:
        """Record ``token``; False if it was seen already."""
        with self._lock:
            while self._seen and (
                len(self._seen) >= self._limit
                or next(iter(self._seen.values())) < now - 2 * TOLERANCE
            ):
                self._seen.popitem(last=False)
            if token in self._seen:
                return False
            self._seen[token] = max(timestamp, now)
            return True

    def forget(self, token: str) -> None:
        """Let a token be used again: its request was verified but could not be applied."""
        with self._lock:
            self._seen.pop(token, None)


def release(body: bytes, tokens: TokenMemory) -> None:
    """Forget the token of a request that was accepted but not applied, so Mailgun's retry is."""
    try:
        envelope = mapping(decode(body, PROVIDER), PROVIDER, "the webhook")
        signature = mapping(envelope.get("signature"), PROVIDER, "signature")
        tokens.forget(text(signature.get("token"), PROVIDER, "signature.token"))
    except WebhookRejected:
        pass


def verify(
    envelope: dict[str, Any], secrets: WebhookSecrets, tokens: TokenMemory, now: float
) -> None:
    signature = mapping(envelope.get("signature"), PROVIDER, "signature")
    timestamp = text(signature.get("timestamp"), PROVIDER, "signature.timestamp")
    token = text(signature.get("token"), PROVIDER, "signature.token")
    claimed = text(signature.get("signature"), PROVIDER, "signature.signature")
    key = (secrets.mailgun_signing_key or "").encode("utf-8")
    expected = hmac.new(key, (timestamp + token).encode("utf-8"), hashlib.sha256).hexdigest()
    if not key or not hmac.compare_digest(expected.encode(), claimed.lower().encode()):
        raise WebhookRejected("the Mailgun signature does not verify", provider=PROVIDER)
    try:
        stamp = float(timestamp)
    except ValueError:
        raise WebhookRejected("signature.timestamp is not a number", provider=PROVIDER) from None
    if not abs(now - stamp) <= TOLERANCE:
        raise WebhookRejected("the Mailgun timestamp is not within 15 minutes", provider=PROVIDER)
    if not tokens.first_use(token, stamp, now):
        raise WebhookRejected("the Mailgun token was used before", provider=PROVIDER)


def parse(
    headers: Mapping[str, str],
    body: bytes,
    secrets: WebhookSecrets,
    *,
    now: float,
    tokens: TokenMemory,
) -> list[ReturnEvent]:
    """The event in one Mailgun request, verified (Mailgun sends one event per request)."""
    envelope = mapping(decode(body, PROVIDER), PROVIDER, "the webhook")
    verify(envelope, secrets, tokens, now)
    data = mapping(envelope.get("event-data"), PROVIDER, "event-data")
    event = data.get("event")
    kind: EventKind
    if event == "failed":
        severity = data.get("severity")
        if severity not in ("permanent", "temporary"):
            raise malformed(
                PROVIDER, "a failed event's severity is neither permanent nor temporary"
            )
        kind = "hard-bounce" if severity == "permanent" else "soft-bounce"
    elif event == "complained":
        kind = "complaint"
    elif event == "unsubscribed":
        kind = "unsubscribe"
    else:
        return []  # accepted, delivered, opened, clicked, stored; rejected is about us
    status = data.get("delivery-status")
    status = status if isinstance(status, dict) else {}
    return [
        ReturnEvent(
            kind=kind,
            email=address(data.get("recipient"), PROVIDER, "recipient"),
            source=SOURCE,
            evidence=f"mailgun:{text(data.get('id'), PROVIDER, 'event-data.id')}",
            at=moment(data.get("timestamp"), now),
            list=_variable(data, "list") if kind == "unsubscribe" else None,
            issue=_variable(data, "issue") or issue_of(_message_id(data)),
            detail=detail(
                event if event != "failed" else f"failed/{data.get('severity')}",
                text(status.get("code"), PROVIDER, "delivery-status.code", required=False),
                text(data.get("reason"), PROVIDER, "reason", required=False),
                text(status.get("description"), PROVIDER, "description", required=False)
                or text(status.get("message"), PROVIDER, "message", required=False),
            ),
        )
    ]


def _variable(data: dict[str, Any], name: str) -> str | None:
    variables = data.get("user-variables")
    value = variables.get(name) if isinstance(variables, dict) else None
    return value[:200] if isinstance(value, str) and value else None


def _message_id(data: dict[str, Any]) -> str | None:
    """Our Message-ID as Mailgun reports it (without its angle brackets)."""
    message = data.get("message")
    headers = message.get("headers") if isinstance(message, dict) else None
    value = headers.get("message-id") if isinstance(headers, dict) else None
    return value if isinstance(value, str) else None
