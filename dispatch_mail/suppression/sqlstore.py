"""The store's rules, written once in SQL that SQLite and PostgreSQL both run.

A backend supplies one thing: ``_transact(work, write=...)``, which runs
``work`` in one transaction of its database (serialized with the other
threads using the same store object) and turns every failure into a
StoreError. Everything else is here, so an unsubscribe, a bounce or a
complaint means the same whichever database holds it.

Each event is recorded first, under a unique evidence: a second apply of the
same evidence, from this process or another one at the same moment, finds it
recorded and changes nothing. Soft bounces of one address are counted while
holding that address (``_hold``): two arriving at once cannot both miss the limit.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar, cast

from dispatch_mail.project.addresses import dedupe_key
from dispatch_mail.suppression.base import SuppressionStore
from dispatch_mail.suppression.migrations import Statements
from dispatch_mail.suppression.records import (
    ALL_LISTS,
    Outcome,
    Reason,
    ReturnEvent,
    SoftBouncePolicy,
    Suppression,
)

T = TypeVar("T")
BATCH = 500  # addresses a query looks up at once (SQLite's bound parameters are limited)
DAY = 86400.0
# the reason an event of each kind suppresses with, on every list
_EVENT_REASONS: dict[str, Reason] = {
    "complaint": "complaint",
    "hard-bounce": "hard-bounce",
    "soft-bounce": "soft-bounce",
}
_COLUMNS = "email, list, reason, source, at, issue, evidence"


class SqlStore(SuppressionStore):
    """The suppression rules over a database connection of the backend's."""

    def _transact(self, work: Callable[[Statements], T], *, write: bool) -> T:
        """Run ``work`` in one transaction, committed when it returns (a backend's job)."""
        raise NotImplementedError

    def _hold(self, tx: Statements, key: str) -> None:
        """Keep other writers off this address until the transaction ends (SQLite: BEGIN does)."""

    # ------------------------------------------------------------------ reading
    def suppressed(
        self, list_name: str, emails: Iterable[str] | None = None
    ) -> dict[str, Suppression]:
        where = "list IN (?, ?)"
        if emails is None:
            rows = self._transact(
                lambda tx: tx.rows(_select(where), (list_name, ALL_LISTS)), write=False
            )
            return _by_key(rows)
        keys = sorted({dedupe_key(email) for email in emails})
        batches = [keys[i : i + BATCH] for i in range(0, len(keys), BATCH)]

        def read(tx: Statements) -> list[tuple[object, ...]]:
            found: list[tuple[object, ...]] = []
            for batch in batches:
                marks = ", ".join("?" * len(batch))
                query = _select(f"{where} AND email_key IN ({marks})")
                found += tx.rows(query, (list_name, ALL_LISTS, *batch))
            return found

        return _by_key(self._transact(read, write=False)) if keys else {}

    def entries(
        self, *, reason: Reason | None = None, list_name: str | None = None
    ) -> Iterator[Suppression]:
        conditions, params = ["1 = 1"], list[object]()
        if reason is not None:
            conditions.append("reason = ?")
            params.append(reason)
        if list_name is not None:
            conditions.append("list IN (?, ?)")
            params += [list_name, ALL_LISTS]
        query = _select(" AND ".join(conditions))
        rows = self._transact(lambda tx: tx.rows(query, params), write=False)
        return iter([_suppression(row) for row in rows])

    def seen(self, evidence: str) -> bool:
        query = "SELECT 1 FROM dispatch_events WHERE evidence = ?"
        return bool(self._transact(lambda tx: tx.rows(query, (evidence,)), write=False))

    # ------------------------------------------------------------------ writing
    def add(self, suppression: Suppression) -> bool:
        return self._transact(lambda tx: _insert(tx, suppression), write=True)

    def remove(self, email: str, list_name: str | None = None) -> int:
        key = dedupe_key(email)

        def lift(tx: Statements) -> int:
            where, params = "email_key = ?", [key]
            if list_name is not None:
                where += " AND list = ?"
                params.append(list_name)
            return _lift(tx, where, params, by="manual", evidence=None)

        return self._transact(lift, write=True)

    def apply(self, event: ReturnEvent, policy: SoftBouncePolicy) -> Outcome:
        key = dedupe_key(event.email)

        def record(tx: Statements) -> Outcome:
            self._hold(tx, key)
            added = tx.run(
                "INSERT INTO dispatch_events (evidence, kind, email_key, at, detail, source) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (evidence) DO NOTHING",
                (event.evidence, event.kind, key, event.at, event.detail, event.source),
            )
            if not added:
                return Outcome(event, duplicate=True)
            return _consequence(tx, event, key, policy)

        return self._transact(record, write=True)


# ------------------------------------------------------------------ what each event means
def _consequence(tx: Statements, event: ReturnEvent, key: str, policy: SoftBouncePolicy) -> Outcome:
    """The change one newly recorded event makes, inside its transaction."""
    if event.kind == "resubscribe":
        where = "email_key = ? AND list = ? AND reason = 'unsubscribed'"
        params: list[object] = [key, event.list or ALL_LISTS]
        lifted = _lift(tx, where, params, by=event.source, evidence=event.evidence)
        return Outcome(event, lifted=lifted)
    if event.kind == "unsubscribe":
        made = _suppression_of(event, event.list or ALL_LISTS, "unsubscribed")
        _insert(tx, made)
        return Outcome(event, suppressed=_holding(tx, made.list, key))
    soft_count = 0
    if event.kind == "soft-bounce":
        since = event.at - policy.window_days * DAY
        rows = tx.rows(
            "SELECT COUNT(*) FROM dispatch_events "
            "WHERE email_key = ? AND kind = 'soft-bounce' AND at > ? AND at <= ?",
            (key, since, event.at),
        )
        soft_count = int(cast(int, rows[0][0]))
        if soft_count < policy.limit:
            return Outcome(event, soft_count=soft_count)
    made = _suppression_of(event, ALL_LISTS, _EVENT_REASONS[event.kind])
    if not _insert(tx, made):
        # a bounce or a complaint outranks an unsubscribe: a resubscribe must not lift it
        tx.run(
            "UPDATE dispatch_suppressions SET reason = ?, source = ?, at = ?, issue = ?, "
            "evidence = ? WHERE list = ? AND email_key = ? AND reason = 'unsubscribed'",
            (made.reason, made.source, made.at, made.issue, made.evidence, ALL_LISTS, key),
        )
    return Outcome(event, suppressed=_holding(tx, ALL_LISTS, key), soft_count=soft_count)


def _suppression_of(event: ReturnEvent, list_name: str, reason: Reason) -> Suppression:
    return Suppression(
        email=event.email.strip(),
        list=list_name,
        reason=reason,
        source=event.source,
        at=event.at,
        issue=event.issue,
        evidence=event.evidence,
    )


# ------------------------------------------------------------------ rows
def _insert(tx: Statements, suppression: Suppression) -> bool:
    """Record one suppression unless the address is already suppressed on that list."""
    added = tx.run(
        f"INSERT INTO dispatch_suppressions (email_key, {_COLUMNS}) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (list, email_key) DO NOTHING",
        (
            dedupe_key(suppression.email),
            suppression.email.strip(),
            suppression.list,
            suppression.reason,
            suppression.source,
            suppression.at,
            suppression.issue,
            suppression.evidence,
        ),
    )
    return added > 0


def _lift(
    tx: Statements, where: str, params: Sequence[object], *, by: str, evidence: str | None
) -> int:
    """Delete the suppressions ``where`` selects, each kept in the history first."""
    tx.run(
        f"INSERT INTO dispatch_lifted (email_key, {_COLUMNS}, lifted_at, lifted_by, "
        f"lifted_evidence) SELECT email_key, {_COLUMNS}, ?, ?, ? "
        f"FROM dispatch_suppressions WHERE {where}",
        (time.time(), by, evidence, *params),
    )
    return tx.run(f"DELETE FROM dispatch_suppressions WHERE {where}", params)


def _holding(tx: Statements, list_name: str, key: str) -> Suppression | None:
    rows = tx.rows(_select("list = ? AND email_key = ?"), (list_name, key))
    return _suppression(rows[0]) if rows else None


def _select(where: str) -> str:
    return f"SELECT {_COLUMNS} FROM dispatch_suppressions WHERE {where} ORDER BY at, id"


def _suppression(row: Sequence[Any]) -> Suppression:
    email, list_name, reason, source, at, issue, evidence = row
    return Suppression(
        email=str(email),
        list=str(list_name),
        reason=reason,
        source=str(source),
        at=float(at),
        issue=issue,
        evidence=evidence,
    )


def _by_key(rows: Iterable[Sequence[Any]]) -> dict[str, Suppression]:
    """dedupe_key → suppression; where an address has both, the every-list one is told."""
    found: dict[str, Suppression] = {}
    for row in rows:
        suppression = _suppression(row)
        key = dedupe_key(suppression.email)
        if key not in found or suppression.list == ALL_LISTS:
            found[key] = suppression
    return found
