"""Postmark's Bounce, SpamComplaint and SubscriptionChange webhooks.

Postmark signs nothing; it sends HTTP Basic credentials written into the webhook URL.
Both the user and the password must match what the environment holds, compared in
constant time. A HardBounce (or BadEmailAddress) is hard; SoftBounce, Transient,
DnsError and Blocked are soft; a SpamComplaint is a complaint; a SubscriptionChange
that suppresses sending is an unsubscribe (or the bounce or complaint it names).
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Mapping
from typing import Any

from dispatch_mail.endpoint.webhooks.payload import (
    address,
    decode,
    detail,
    issue_of,
    mapping,
    moment,
    text,
)
from dispatch_mail.endpoint.webhooks.secrets import WebhookSecrets
from dispatch_mail.errors import WebhookRejected
from dispatch_mail.project.addresses import dedupe_key
from dispatch_mail.suppression.records import WEBHOOK_SOURCE, EventKind, ReturnEvent

PROVIDER = "postmark"
SOURCE = WEBHOOK_SOURCE + PROVIDER
BOUNCE_KINDS: dict[str, EventKind] = {
    "HardBounce": "hard-bounce",
    "BadEmailAddress": "hard-bounce",
    "SoftBounce": "soft-bounce",
    "Transient": "soft-bounce",
    "DnsError": "soft-bounce",
    "Blocked": "soft-bounce",
    "SpamComplaint": "complaint",
    "Unsubscribe": "unsubscribe",  # the recipient replied asking to be removed
}
SUPPRESSION_KINDS: dict[str, EventKind] = {
    "HardBounce": "hard-bounce",
    "SpamComplaint": "complaint",
    "ManualSuppression": "unsubscribe",
}


def check_credentials(headers: Mapping[str, str], secrets: WebhookSecrets) -> None:
    """The request's Basic credentials are the configured ones, or it is rejected (401)."""
    value = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
    scheme, _, encoded = value.strip().partition(" ")
    try:
        user, sep, password = base64.b64decode(encoded.strip(), validate=True).partition(b":")
    except (binascii.Error, ValueError):
        user, sep, password = b"", b"", b""
    expected_user = (secrets.postmark_user or "").encode("utf-8")
    expected_password = (secrets.postmark_password or "").encode("utf-8")
    # both compared, whatever the first says, so the time tells nothing
    user_ok = hmac.compare_digest(user, expected_user)
    password_ok = hmac.compare_digest(password, expected_password)
    if scheme.lower() != "basic" or not sep or not (user_ok and password_ok) or not expected_user:
        raise WebhookRejected("wrong or missing credentials", provider=PROVIDER, reason="auth")


def parse(
    headers: Mapping[str, str], body: bytes, secrets: WebhookSecrets, *, now: float
) -> list[ReturnEvent]:
    """The event in one Postmark request (Postmark sends one record per request)."""
    check_credentials(headers, secrets)
    record = mapping(decode(body, PROVIDER), PROVIDER, "the record")
    kind = record.get("RecordType")
    if kind in ("Bounce", "SpamComplaint"):
        return _bounce(record, now)
    if kind == "SubscriptionChange":
        return _subscription_change(record, now)
    return []  # Delivery, Open, Click, Inbound


def _bounce(record: dict[str, Any], now: float) -> list[ReturnEvent]:
    bounce_type = text(record.get("Type"), PROVIDER, "Type")
    kind = BOUNCE_KINDS.get(bounce_type)
    if kind is None:  # AutoResponder, AddressChange, SpamNotification, …: not about the address
        return []
    email = address(record.get("Email"), PROVIDER, "Email")
    return [
        ReturnEvent(
            kind=kind,
            email=email,
            source=SOURCE,
            evidence=f"postmark:{text(record.get('ID'), PROVIDER, 'ID')}",
            at=moment(record.get("BouncedAt"), now),
            list=_list(record) if kind == "unsubscribe" else None,
            issue=_issue(record),
            detail=detail(
                bounce_type,
                text(record.get("TypeCode"), PROVIDER, "TypeCode", required=False),
                text(record.get("Description"), PROVIDER, "Description", required=False),
                text(record.get("Details"), PROVIDER, "Details", required=False),
            ),
        )
    ]


def _subscription_change(record: dict[str, Any], now: float) -> list[ReturnEvent]:
    if record.get("SuppressSending") is not True:
        return []  # a reactivation at Postmark does not lift our own suppression
    reason = text(record.get("SuppressionReason"), PROVIDER, "SuppressionReason", required=False)
    kind = SUPPRESSION_KINDS.get(reason, "unsubscribe")
    email = address(record.get("Recipient"), PROVIDER, "Recipient")
    changed = text(record.get("ChangedAt"), PROVIDER, "ChangedAt")
    # no ID of its own: the message, the address and the moment make one change unique
    message = text(record.get("MessageID"), PROVIDER, "MessageID", required=False) or "-"
    return [
        ReturnEvent(
            kind=kind,
            email=email,
            source=SOURCE,
            evidence=f"postmark:subscription:{message}:{dedupe_key(email)}:{changed}",
            at=moment(changed, now),
            list=_list(record) if kind == "unsubscribe" else None,
            issue=_issue(record),
            detail=detail(
                "SubscriptionChange",
                reason,
                text(record.get("Origin"), PROVIDER, "Origin", required=False),
            ),
        )
    ]


def _metadata(record: dict[str, Any]) -> dict[str, Any]:
    metadata = record.get("Metadata")
    return metadata if isinstance(metadata, dict) else {}


def _issue(record: dict[str, Any]) -> str | None:
    """The ``issue`` metadata, else the issue in our Message-ID if Postmark passed its headers."""
    value = _metadata(record).get("issue")
    if isinstance(value, str) and value:
        return value[:200]
    headers = record.get("Headers")
    if isinstance(headers, list):
        for header in headers[:200]:
            if isinstance(header, dict) and str(header.get("Name", "")).lower() == "message-id":
                return issue_of(str(header.get("Value", "")))
    return None


def _list(record: dict[str, Any]) -> str | None:
    """The list an unsubscribe is for (``list`` metadata); None: every list."""
    value = _metadata(record).get("list")
    return value[:200] if isinstance(value, str) and value else None
