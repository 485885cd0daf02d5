"""Deferred recipients: a temporary refusal that outlasted a run waits, like mail in an MTA's queue.

A row moves sending → deferred when its 4xx replies used up a run's attempts; it is
due again after a wait that doubles with each deferral, keeps its row (so its
Message-ID and fields), and fails only when it has been deferred for longer than
its lifetime. Suppressed rows still to send are withdrawn here too.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dispatch_mail.delivery.journal.file import rollback
from dispatch_mail.delivery.journal.guard import reads as _reads
from dispatch_mail.delivery.journal.guard import writes as _writes

MAX_WAIT = 4 * 3600.0  # the longest wait between two tries of a deferred recipient
_REPLY_LIMIT = 500


@dataclass(frozen=True)
class Deferred:
    """A recipient refused for now: when it is due again, and since when it waits."""

    email: str
    last_code: int | None
    last_reply: str | None
    due: float
    since: float
    deferrals: int


class Deferrals:
    """The deferral and withdrawal methods of a Journal (store.py)."""

    path: Path
    conn: sqlite3.Connection

    def _scalar(self, sql: str, args: tuple[object, ...] = ()) -> Any:
        return self.conn.execute(sql, args).fetchone()[0]

    @_writes
    def mark_deferred(
        self, row_id: int, code: int | None, reply: str, retry_after: float, lifetime: float
    ) -> bool:
        """Defer a row whose temporary refusals outlasted this run; False when its lifetime is over.

        Its next try is ``retry_after`` seconds away, doubling with each deferral (at most 4
        hours). A row deferred longer than ``lifetime`` seconds fails instead, as an MTA
        bounces a message that stayed in its queue too long.
        """
        now = time.time()
        row = self.conn.execute(
            "SELECT deferred_at, deferrals FROM recipients WHERE id=?", (row_id,)
        ).fetchone()
        first = row[0] if row and row[0] is not None else now
        deferrals = (row[1] if row else 0) + 1
        if now - first >= lifetime:
            hours = lifetime / 3600
            self.conn.execute(
                "UPDATE recipients SET state='failed', last_code=?, last_reply=?, updated_at=?"
                " WHERE id=?",
                (
                    code,
                    f"deferred for {hours:g} hours, gave up: {reply}"[:_REPLY_LIMIT],
                    now,
                    row_id,
                ),
            )
            return False
        wait = min(retry_after * 2 ** (deferrals - 1), MAX_WAIT, first + lifetime - now)
        self.conn.execute(
            "UPDATE recipients SET state='deferred', last_code=?, last_reply=?, not_before=?,"
            " deferred_at=?, deferrals=?, updated_at=? WHERE id=?",
            (code, reply[:_REPLY_LIMIT], now + wait, first, deferrals, now, row_id),
        )
        return True

    @_writes
    def release_deferred(self, *, now: bool = False) -> tuple[int, int]:
        """Deferred rows that are due (all of them, with ``now``) back to pending: (released, left).

        Each keeps its row, so its Message-ID and fields; its attempts start again.
        """
        t = time.time()
        due = "" if now else " AND not_before<=?"
        released = self.conn.execute(
            "UPDATE recipients SET state='pending', attempts=0, not_before=0, updated_at=?"
            f" WHERE state='deferred'{due}",
            (t,) if now else (t, t),
        ).rowcount
        left = int(self._scalar("SELECT COUNT(*) FROM recipients WHERE state='deferred'"))
        return released, left

    @_reads
    def next_deferred_at(self) -> float | None:
        """When the earliest deferred row is due (None: nothing is deferred)."""
        value = self._scalar("SELECT MIN(not_before) FROM recipients WHERE state='deferred'")
        return None if value is None else float(value)

    @_writes
    def withdraw(self, rows: Iterable[tuple[int, str, str]]) -> int:
        """Rows still to send that must not be (suppressed since the send began): (id, email, why).

        Each leaves the recipients, never to be sent by this journal unless the list and
        the store allow them again, and is kept among the exclusions with its reason.
        """
        withdrawn = 0
        self.conn.execute("BEGIN")
        try:
            for row_id, email, reason in rows:
                gone = self.conn.execute(
                    "DELETE FROM recipients WHERE id=? AND state IN ('pending','held','deferred')",
                    (row_id,),
                ).rowcount
                if gone:
                    self.conn.execute(
                        "INSERT INTO exclusions(source, line, email, reason) VALUES (?,?,?,?)",
                        ("suppression store", 0, email, reason),
                    )
                    withdrawn += gone
            self.conn.execute("COMMIT")
        except BaseException:
            rollback(self.conn)
            raise
        return withdrawn

    @_reads
    def deferred(self) -> list[Deferred]:
        """The deferred rows, the soonest due first (none in a journal from before deferrals)."""
        if self._scalar("PRAGMA user_version") < 2:
            return []
        return [
            Deferred(*r)
            for r in self.conn.execute(
                "SELECT email, last_code, last_reply, not_before, deferred_at, deferrals"
                " FROM recipients WHERE state='deferred' ORDER BY not_before, id"
            )
        ]

    @_reads
    def sent_after_deferral(self) -> int:
        """How many were reached in a later run after being deferred."""
        if self._scalar("PRAGMA user_version") < 2:
            return 0
        return int(
            self._scalar("SELECT COUNT(*) FROM recipients WHERE state='sent' AND deferrals>0")
        )
