"""`dispatch bounces`: read the return mailbox, classify each message, tell the store once.

Each recorded event's evidence is the return message's Message-ID (or the
digest of its bytes) and the address, so reading the same mailbox twice
changes nothing and says "already processed". A message that is not
understood is left where it is; with IMAP and a folder to move to, only
messages whose outcome is final (recorded, already processed, ignored) move.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from dispatch_mail.bounces.classify import Classification, Subject, classify
from dispatch_mail.bounces.mapping import Resolver, Target
from dispatch_mail.bounces.sources import MailboxSpec
from dispatch_mail.mail.tokens import TokenKeys
from dispatch_mail.project.addresses import dedupe_key
from dispatch_mail.project.settings import Project
from dispatch_mail.project.wording import plural
from dispatch_mail.suppression.base import SuppressionStore
from dispatch_mail.suppression.records import Outcome, ReturnEvent, SoftBouncePolicy

_SOURCES = {"complaint": "feedback-report", "unsubscribe": "mailto"}


@dataclass(frozen=True)
class Finding:
    """What one message meant for one address (or for none: ignored, unknown, unmatched)."""

    outcome: str  # recorded, would-record, duplicate, unmatched, ignored, unknown
    line: str  # the classification as shown, e.g. 'hard-bounce 5.1.1 a@x.org (2026-q1, list main)'
    via: str | None = None  # how the address was found: verp, message-id, journal, token, from


@dataclass(frozen=True)
class MessageResult:
    key: str  # the message in its mailbox: its number, maildir key or IMAP UID
    classification: Classification
    findings: tuple[Finding, ...]

    @property
    def final(self) -> bool:
        """Whether the message has done its work and may move out of the way."""
        return all(f.outcome in ("recorded", "duplicate", "ignored") for f in self.findings)

    def as_dict(self) -> dict[str, object]:
        return {
            "message": self.key,
            "kind": self.classification.kind,
            "evidence": self.classification.evidence,
            "findings": [
                {"outcome": f.outcome, "line": f.line, "via": f.via} for f in self.findings
            ],
        }


@dataclass
class BounceRun:
    mailbox: str
    dry_run: bool
    messages: list[MessageResult] = field(default_factory=list)
    moved: int = 0
    move_to: str | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def counts(self) -> Counter[str]:
        """How many findings of each kind and outcome: 'hard-bounce', 'unknown', 'duplicate', …"""
        tally: Counter[str] = Counter()
        for result in self.messages:
            for finding in result.findings:
                kind = result.classification.kind
                tally[
                    kind
                    if finding.outcome in ("recorded", "would-record", "ignored", "unknown")
                    else finding.outcome
                ] += 1
        return tally

    def as_dict(self) -> dict[str, object]:
        return {
            "mailbox": self.mailbox,
            "dry_run": self.dry_run,
            "messages": [m.as_dict() for m in self.messages],
            "counts": dict(sorted(self.counts.items())),
            "moved": self.moved,
            "move_to": self.move_to,
            "warnings": self.warnings,
        }


def process_bounces(
    project: Project,
    mailbox: MailboxSpec,
    *,
    dry_run: bool = False,
    move_to: str | None = None,
    secret_file: Path | None = None,
    database_url: str | None = None,
    now: float | None = None,
) -> BounceRun:
    """Read the mailbox, classify and record each message; what happened to each one."""
    from dispatch_mail.suppression import open_store

    keys = TokenKeys.load(secret_file, required=False)
    policy = SoftBouncePolicy(project.bounces.soft_limit, project.bounces.soft_window_days)
    source = mailbox.open(writable=move_to is not None and not dry_run)
    resolver = Resolver(project, keys)
    store = None if dry_run else open_store(project, url=database_url)
    run = BounceRun(source.location, dry_run, move_to=move_to)
    try:
        for key, raw in source.messages():
            found = classify(raw, unsubscribe_mailto=project.footer.unsubscribe_mailto)
            findings = _record(found, resolver, store, policy, now)
            run.messages.append(MessageResult(key, found, findings))
        if move_to and not dry_run and source.can_move:
            run.moved = source.move([m.key for m in run.messages if m.final], move_to)
    finally:
        run.warnings += resolver.warnings
        resolver.close()
        source.close()
        if store is not None:
            store.close()
    return run


def _record(
    found: Classification,
    resolver: Resolver,
    store: SuppressionStore | None,
    policy: SoftBouncePolicy,
    now: float | None,
) -> tuple[Finding, ...]:
    if found.kind == "auto-reply":
        return (Finding("ignored", f"auto-reply: ignored ({found.note})"),)
    if found.kind == "delay":
        return (Finding("ignored", "delay notice: ignored"),)
    if found.kind == "unknown":
        return (Finding("unknown", f"unknown: left in place ({found.note})"),)
    if found.kind == "unsubscribe":
        target = resolver.unsubscribe_target(found)
        pairs = [(found.subjects[0] if found.subjects else Subject(""), target)]
    else:
        pairs = [
            (subject, resolver.bounce_target(found, subject))
            for subject in found.subjects or (Subject(""),)
        ]
    findings = []
    for subject, target in pairs:
        if target is None:
            shown = subject.email or found.returned_to or "no address"
            findings.append(
                Finding(
                    "unmatched", f"{found.kind} {_status(subject)}{shown}: unmatched: not recorded"
                )
            )
            continue
        event = _event(found, subject, target, now)
        if store is None:
            findings.append(
                Finding(
                    "would-record",
                    _describe(event, target, subject, None, policy) + " (dry run)",
                    target.via,
                )
            )
            continue
        if store.seen(event.evidence):
            findings.append(
                Finding(
                    "duplicate",
                    f"already processed: {_describe(event, target, subject, None, policy)}",
                    target.via,
                )
            )
            continue
        outcome = store.apply(event, policy)
        if outcome.duplicate:
            findings.append(
                Finding(
                    "duplicate",
                    f"already processed: {_describe(event, target, subject, None, policy)}",
                    target.via,
                )
            )
        else:
            line = _describe(event, target, subject, outcome, policy)
            findings.append(Finding("recorded", line, target.via))
    return tuple(findings)


def _event(
    found: Classification, subject: Subject, target: Target, now: float | None
) -> ReturnEvent:
    kind = found.kind
    assert kind in ("hard-bounce", "soft-bounce", "complaint", "unsubscribe")
    detail = " ".join(x for x in (subject.status, subject.detail) if x)[:500]
    return ReturnEvent(
        kind=kind,
        email=target.email,
        source=_SOURCES.get(kind, "bounce"),
        evidence=f"{found.evidence} {dedupe_key(target.email)}",
        at=time.time() if now is None else now,
        list=target.list_name if kind == "unsubscribe" else None,
        issue=target.issue,
        detail=detail or (f"via {target.via}" if kind == "unsubscribe" else ""),
    )


def _status(subject: Subject) -> str:
    return f"{subject.status} " if subject.status else ""


def _describe(
    event: ReturnEvent,
    target: Target,
    subject: Subject,
    outcome: Outcome | None,
    policy: SoftBouncePolicy,
) -> str:
    where = ", ".join(
        x for x in (target.issue, f"list {target.list_name}" if target.list_name else None) if x
    )
    if event.kind == "unsubscribe":
        where = f"list {target.list_name}" if target.list_name else "every list"
    text = f"{event.kind} {_status(subject)}{event.email}"
    if event.kind == "complaint" and subject.detail:
        text = f"complaint ({subject.detail}) {event.email}"
    text += f" ({where})" if where else ""
    if event.kind == "soft-bounce" and outcome is not None:
        counted = f"{outcome.soft_count} of {policy.limit} in {plural(policy.window_days, 'day')}"
        text += f" ({counted}{': suppressed' if outcome.suppressed is not None else ''})"
    return text
