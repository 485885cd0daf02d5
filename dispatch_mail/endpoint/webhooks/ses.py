"""Amazon SES bounce and complaint notifications, as SNS delivers them.

Both SES forms are read: identity notifications (``notificationType``) and event
publishing (``eventType``). A Permanent bounce is hard; Transient and Undetermined are
soft (the store counts them); a complaint is a complaint; deliveries and the rest are
not ours to act on. One event per recipient, its evidence the SNS MessageId and the
address, so a notification SNS retries changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from dispatch_mail.endpoint.webhooks import sns
from dispatch_mail.endpoint.webhooks.payload import (
    address,
    detail,
    issue_of,
    malformed,
    mapping,
    moment,
    text,
)
from dispatch_mail.endpoint.webhooks.secrets import WebhookSecrets
from dispatch_mail.project.addresses import dedupe_key
from dispatch_mail.suppression.records import WEBHOOK_SOURCE, EventKind, ReturnEvent

PROVIDER = "ses"
SOURCE = WEBHOOK_SOURCE + PROVIDER
MAX_RECIPIENTS = 100  # SES sends to at most 50 per message


def parse(
    headers: Mapping[str, str], body: bytes, secrets: WebhookSecrets, *, now: float
) -> list[ReturnEvent]:
    """The events in one SNS delivery, verified; a confirmation carries none."""
    message = sns.verify(headers, body, secrets, now=now)
    return events(message, now=now)


def events(message: sns.SnsMessage, *, now: float) -> list[ReturnEvent]:
    if message.type != "Notification":
        return []
    try:
        note = mapping(json.loads(message.message), PROVIDER, "the SES notification")
    except (ValueError, RecursionError):
        raise malformed(PROVIDER, "the SNS Message is not SES's JSON") from None
    kind = note.get("notificationType") or note.get("eventType")
    mail = mapping(note.get("mail") or {}, PROVIDER, "mail")
    issue = _tag(mail) or issue_of(_original_message_id(mail))
    if kind == "Bounce":
        return _bounces(mapping(note.get("bounce"), PROVIDER, "bounce"), message, issue, now)
    if kind == "Complaint":
        return _complaints(
            mapping(note.get("complaint"), PROVIDER, "complaint"), message, issue, now
        )
    return []  # Delivery, Send, Open, Click, DeliveryDelay (our journal handles delays), …


def _bounces(
    bounce: dict[str, Any], message: sns.SnsMessage, issue: str | None, now: float
) -> list[ReturnEvent]:
    bounce_type = text(bounce.get("bounceType"), PROVIDER, "bounceType")
    kind: EventKind = "hard-bounce" if bounce_type == "Permanent" else "soft-bounce"
    sub_type = text(bounce.get("bounceSubType"), PROVIDER, "bounceSubType", required=False)
    at = moment(bounce.get("timestamp"), now)
    found = []
    for recipient in _recipients(bounce.get("bouncedRecipients")):
        email = address(recipient.get("emailAddress"), PROVIDER, "emailAddress")
        found.append(
            ReturnEvent(
                kind=kind,
                email=email,
                source=SOURCE,
                evidence=f"ses:{message.message_id}:{dedupe_key(email)}",
                at=at,
                issue=issue,
                detail=detail(
                    f"{bounce_type}/{sub_type}" if sub_type else bounce_type,
                    text(recipient.get("status"), PROVIDER, "status", required=False),
                    text(
                        recipient.get("diagnosticCode"), PROVIDER, "diagnosticCode", required=False
                    ),
                ),
            )
        )
    return found


def _complaints(
    complaint: dict[str, Any], message: sns.SnsMessage, issue: str | None, now: float
) -> list[ReturnEvent]:
    feedback = text(complaint.get("complaintFeedbackType"), PROVIDER, "type", required=False)
    at = moment(complaint.get("timestamp"), now)
    found = []
    for recipient in _recipients(complaint.get("complainedRecipients")):
        email = address(recipient.get("emailAddress"), PROVIDER, "emailAddress")
        found.append(
            ReturnEvent(
                kind="complaint",
                email=email,
                source=SOURCE,
                evidence=f"ses:{message.message_id}:{dedupe_key(email)}",
                at=at,
                issue=issue,
                detail=detail("complaint", feedback),
            )
        )
    return found


def _recipients(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not value or len(value) > MAX_RECIPIENTS:
        raise malformed(PROVIDER, "the recipients are not a list of 1 to 100")
    return [mapping(item, PROVIDER, "a recipient") for item in value]


def _original_message_id(mail: dict[str, Any]) -> str | None:
    """Our Message-ID, which SES keeps in the headers it reports (its own messageId is SES's)."""
    common = mail.get("commonHeaders")
    if isinstance(common, dict) and isinstance(common.get("messageId"), str):
        return str(common["messageId"])
    headers = mail.get("headers")
    if isinstance(headers, list):
        for header in headers[:200]:
            if isinstance(header, dict) and str(header.get("name", "")).lower() == "message-id":
                value = header.get("value")
                return value if isinstance(value, str) else None
    return None


def _tag(mail: dict[str, Any]) -> str | None:
    """An ``issue`` message tag (SES event publishing sends tags as name → [values])."""
    tags = mail.get("tags")
    if isinstance(tags, dict):
        values = tags.get("issue")
        if isinstance(values, list) and values and isinstance(values[0], str):
            return values[0][:200] or None
    return None
