"""RFC 5965 feedback reports: a recipient told their provider our message was spam.

A report is a multipart/report (report-type=feedback-report) with a
human-readable part, a message/feedback-report part (Feedback-Type,
Original-Rcpt-To, Original-Mail-From, …) and the message it is about
(message/rfc822 or text/rfc822-headers). Providers often redact the recipient
from the report, so the returned message's To and Message-ID, and the VERP
address of its Return-Path, are what is left to map it back.
"""

from __future__ import annotations

import email
import email.policy
from dataclasses import dataclass
from email.message import Message

from dispatch_mail.bounces.message import content_type, header, report_type, text_of, walk


@dataclass(frozen=True)
class FeedbackReport:
    """What one feedback report says."""

    feedback_type: str  # abuse, fraud, virus, other, not-spam, …
    original_rcpt_to: str  # '' when redacted or absent
    original_mail_from: str  # the envelope sender of our message: a VERP address, when VERP is on


def is_feedback_report(message: Message) -> bool:
    if report_type(message) == "feedback-report":
        return True
    return any(content_type(part) == "message/feedback-report" for part in walk(message))


def read_feedback(message: Message) -> FeedbackReport | None:
    """The report's fields; None when the message holds no message/feedback-report part."""
    for part in walk(message):
        if content_type(part) != "message/feedback-report":
            continue
        fields = _fields(part)
        return FeedbackReport(
            feedback_type=(header(fields, "Feedback-Type") or "abuse").lower().split(" ")[0],
            original_rcpt_to=_bare(header(fields, "Original-Rcpt-To")),
            original_mail_from=_bare(header(fields, "Original-Mail-From")),
        )
    return None


def _fields(part: Message) -> Message | None:
    payload = part.get_payload()
    if isinstance(payload, list) and payload and isinstance(payload[0], Message):
        return payload[0]
    try:
        return email.message_from_string(text_of(part).lstrip("\r\n"), policy=email.policy.default)
    except Exception:
        return None


def _bare(value: str) -> str:
    address = value.strip().strip("<>").lower()
    return address if "@" in address and " " not in address else ""
