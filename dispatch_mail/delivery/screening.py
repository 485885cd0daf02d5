"""The send asks the suppression store, at its start and before each batch: nobody unwanted.

An unsubscribe can arrive while a long send runs (the endpoint writes the store
from another machine): each batch of recipients is looked up just before it is
queued, and whoever is suppressed by then leaves the journal with the reason.
If the store cannot answer, the send stops rather than mail people it cannot check.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from dispatch_mail.delivery.journal import Journal, Row
from dispatch_mail.suppression.base import SuppressionStore
from dispatch_mail.suppression.records import Suppression


def reason_of(suppression: Suppression) -> str:
    """What the plan and status say of a suppressed recipient, e.g.
    ``suppressed (unsubscribed, one-click): on 2026-12-01, from 2026-q1``."""
    day = datetime.fromtimestamp(suppression.at, UTC).date().isoformat()
    origin = f", from {suppression.issue}" if suppression.issue else ""
    return f"suppressed ({suppression.reason}, {suppression.source}): on {day}{origin}"


def suppressed_reasons(
    store: SuppressionStore, list_name: str, from_file: set[str] | None = None
) -> Mapping[str, str]:
    """dedupe key → reason, for everyone the store or the list's suppression file bars."""
    reasons = {key: reason_of(s) for key, s in store.suppressed(list_name).items()}
    for key in from_file or ():
        reasons.setdefault(key, "suppressed: unsubscribed or bounced")
    return reasons


class BatchScreen:
    """The engine's screen: a batch's rows, less those the store now bars (withdrawn)."""

    def __init__(self, store: SuppressionStore, list_name: str, journal: Journal):
        self.store, self.list_name, self.journal = store, list_name, journal

    def __call__(self, rows: list[Row]) -> list[Row]:
        barred = self.store.suppressed(self.list_name, [row.email for row in rows])
        if not barred:
            return rows
        from dispatch_mail.project.addresses import dedupe_key

        out: list[Row] = []
        gone: list[tuple[int, str, str]] = []
        for row in rows:
            hit = barred.get(dedupe_key(row.email))
            if hit is None:
                out.append(row)
            else:
                gone.append((row.id, row.email, reason_of(hit)))
        self.journal.withdraw(gone)
        return out
