"""One return message → what it is: a bounce, a complaint, an unsubscribe request, or to be ignored.

The order matters. A DSN or a feedback report is recognised first (MTAs mark
their DSNs Auto-Submitted too); then a request to the unsubscribe address;
then an automatic reply, which is never a bounce; then the plain-text bounces
flufl.bounce knows. Anything else is "unknown" and is left where it is. Nothing
here raises on any input: a message that cannot be read is "unknown".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from email.message import Message
from typing import Literal

from dispatch_mail.bounces.arf import is_feedback_report, read_feedback
from dispatch_mail.bounces.autoreply import auto_reply_reason, is_user_reply
from dispatch_mail.bounces.dsn import DsnRecipient, read_dsn
from dispatch_mail.bounces.legacy import looks_like_delay, read_legacy
from dispatch_mail.bounces.mailto import read_unsubscribe_request
from dispatch_mail.bounces.message import addresses, evidence_id, header, parse, returned_headers

Kind = Literal[
    "hard-bounce", "soft-bounce", "complaint", "unsubscribe", "auto-reply", "delay", "unknown"
]
RECORDED_KINDS = ("hard-bounce", "soft-bounce", "complaint", "unsubscribe")
# where a bounce was addressed: the VERP return path it came back to
_MAIL_SYSTEMS = ("mailer-daemon", "postmaster", "mail-daemon", "mailerdaemon")
_DELIVERY_HEADERS = ("Delivered-To", "X-Original-To", "Envelope-To", "X-Envelope-To", "To")


@dataclass(frozen=True)
class Subject:
    """One address the message is about (a failed recipient, a complainant, an unsubscriber)."""

    email: str  # as the message says it ('' when it does not: a redacted report)
    status: str = ""  # '5.1.1'
    detail: str = ""  # the diagnostic, the feedback type, …


@dataclass(frozen=True)
class Classification:
    """What one return message is, and what it says to map it back to what we sent."""

    kind: Kind
    evidence: str  # the message's Message-ID, or sha256:… of its bytes
    subjects: tuple[Subject, ...] = ()
    note: str = ""  # why it is ignored or unknown
    returned_message_id: str = ""  # the Message-ID of our message that came back
    returned_to: str = ""  # its To
    verp_candidates: tuple[str, ...] = ()  # addresses that may be our VERP return path
    token: str | None = None  # an unsubscribe request's token
    recorded: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "recorded", self.kind in RECORDED_KINDS)


def classify(raw: bytes, *, unsubscribe_mailto: str | None = None) -> Classification:
    """Classify one message's bytes; never raises."""
    message = parse(raw)
    evidence = evidence_id(message, raw)
    if message is None:
        return Classification("unknown", evidence, note="unreadable")
    try:
        return _classify(message, evidence, unsubscribe_mailto)
    except Exception:  # malformed MIME in a place the parser let through
        return Classification("unknown", evidence, note="malformed")


def _classify(message: Message, evidence: str, mailto: str | None) -> Classification:
    returned = returned_headers(message)
    verp = addresses(message, *_DELIVERY_HEADERS) + addresses(returned, "Return-Path")
    returned_id = header(returned, "Message-ID")
    returned_to = (addresses(returned, "To") or [""])[0]

    def about(kind: Kind, subjects: tuple[Subject, ...] = (), note: str = "") -> Classification:
        return Classification(kind, evidence, subjects, note, returned_id, returned_to, tuple(verp))

    if is_feedback_report(message):
        report = read_feedback(message)
        if report is not None and report.original_mail_from:
            verp.append(report.original_mail_from)
        email = (report.original_rcpt_to if report else "") or returned_to
        return about(
            "complaint", (Subject(email, "", report.feedback_type if report else "abuse"),)
        )
    dsn = read_dsn(message)
    if dsn is not None:
        kind, subjects, note = _from_dsn(dsn)
        return about(kind, subjects, note)
    request = read_unsubscribe_request(message, mailto)
    if request is not None and is_user_reply(message):
        subjects = (Subject(request.sender),) if request.sender else ()
        return Classification("unsubscribe", evidence, subjects, token=request.token)
    reason = auto_reply_reason(message)
    # MTAs mark their bounces auto-replied too: a robot's message is scanned as a bounce only
    # when a mail system wrote it, so a vacation notice is never read as one
    failures = read_legacy(message) if reason is None or _from_mail_system(message) else []
    if not failures:
        if reason is not None:
            return Classification("auto-reply", evidence, note=reason)
        return Classification("unknown", evidence, note="not a bounce dispatch recognises")
    if looks_like_delay(message) and not any(f.permanent for f in failures):
        return about("delay", note="a warning: still being tried")
    permanent = [f for f in failures if f.permanent and not f.status.startswith("4")]
    chosen = permanent or failures
    subjects = tuple(Subject(f.email, f.status, f.diagnostic) for f in chosen)
    return about("hard-bounce" if permanent else "soft-bounce", subjects)


def _from_dsn(dsn: list[DsnRecipient]) -> tuple[Kind, tuple[Subject, ...], str]:
    """Failed recipients → a bounce (5 hard, 4 soft); only delayed ones → a delay notice."""
    failed = [r for r in dsn if r.action == "failed" or (not r.action and r.severity in ("4", "5"))]
    hard = [r for r in failed if r.severity == "5"]
    soft = [r for r in failed if r.severity == "4"]
    if hard or soft:
        chosen = hard or soft
        subjects = tuple(
            Subject(r.address, r.status or f"{r.severity}.0.0", r.diagnostic) for r in chosen
        )
        return ("hard-bounce" if hard else "soft-bounce"), subjects, ""
    if any(r.action == "delayed" for r in dsn):
        return "delay", (), "Action: delayed"
    actions = sorted({r.action or "none" for r in dsn}) or ["no recipients"]
    return "unknown", (), f"a DSN with Action: {', '.join(actions)}"


def _from_mail_system(message: Message) -> bool:
    if header(message, "X-Failed-Recipients"):
        return True
    return any(
        address.split("@")[0] in _MAIL_SYSTEMS for address in addresses(message, "From", "Sender")
    )
