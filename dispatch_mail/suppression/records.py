"""What the suppression store holds, and what return mail and the endpoint tell it.

A ``Suppression`` is one address that must not be mailed on one list (or on every
list, ``ALL_LISTS``), with why, from where and the evidence. A ``ReturnEvent`` is
one thing that happened to a sent message (a bounce, a complaint, an unsubscribe
request, a resubscribe), as the bounce reader, the webhooks and the endpoint
report it; the store turns events into suppressions by one set of rules
(``SuppressionStore.apply``), so a bounce counts the same wherever it was read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ALL_LISTS = "*"  # a hard bounce or a complaint is the address's, whatever list it came through

Reason = Literal["unsubscribed", "hard-bounce", "soft-bounce", "complaint", "manual"]
REASONS: tuple[Reason, ...] = ("unsubscribed", "hard-bounce", "soft-bounce", "complaint", "manual")

# where a suppression came from; a webhook's is "webhook:<provider>" (ses, postmark, …)
SOURCES = (
    "one-click",
    "confirmation-page",
    "mailto",
    "bounce",
    "feedback-report",
    "import",
    "manual",
)
WEBHOOK_SOURCE = "webhook:"

EventKind = Literal["unsubscribe", "resubscribe", "hard-bounce", "soft-bounce", "complaint"]
EVENT_KINDS: tuple[EventKind, ...] = (
    "unsubscribe",
    "resubscribe",
    "hard-bounce",
    "soft-bounce",
    "complaint",
)


@dataclass(frozen=True)
class Suppression:
    """One address not to mail on one list (``ALL_LISTS``: on any)."""

    email: str  # as it was given; compared by dedupe_key
    list: str
    reason: Reason
    source: str
    at: float  # time.time() when it was recorded
    issue: str | None = None  # the issue slug it came from, when known
    evidence: str | None = None  # e.g. the bounce's Message-ID, a webhook's event id


@dataclass(frozen=True)
class ReturnEvent:
    """One thing return mail, a relay's webhook or the endpoint says happened to an address.

    ``evidence`` identifies the event itself (a bounce message's Message-ID or digest, a
    provider's event id): the store records each evidence once, so reading the same
    mailbox or receiving the same webhook twice changes nothing.
    """

    kind: EventKind
    email: str
    source: str
    evidence: str
    at: float
    list: str | None = None  # None: every list (bounces, complaints)
    issue: str | None = None
    detail: str = ""  # the status code and diagnostic, the feedback type, …


@dataclass(frozen=True)
class Outcome:
    """What applying one event did."""

    event: ReturnEvent
    duplicate: bool = False  # this evidence was applied before: nothing changed
    suppressed: Suppression | None = None  # the suppression it made (or that already held)
    lifted: int = 0  # suppressions a resubscribe removed
    soft_count: int = 0  # soft bounces of this address within the window, this one included


@dataclass(frozen=True)
class SoftBouncePolicy:
    """Soft bounces suppress only when ``limit`` fall within ``window_days`` (3 in 30 is usual)."""

    limit: int = 3
    window_days: int = 30
