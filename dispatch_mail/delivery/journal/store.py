"""The send journal: one SQLite file per issue send, so that nothing is lost and nothing sent twice.

A recipient's row moves pending → sending → sent | failed (or back to pending
for a retry). It is committed as ``sending`` before the message's transaction
starts and as ``sent`` only after the server's 250 to DATA, so after a crash
at any moment the only recipients whose fate is unknown are those left in
``sending``: at most one per connection. WAL mode with synchronous=NORMAL
keeps every commit durable against a crash of the process. Every SQL statement
of a send is in this package: the engine calls named methods. A failure of
SQLite itself (a full disk, a read-only file) becomes a JournalError in one line.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import ParamSpec, TypeVar

from dispatch_mail.delivery.audience import Exclusion, Recipient
from dispatch_mail.delivery.journal import lease
from dispatch_mail.delivery.journal.checkpoints import Checkpointer
from dispatch_mail.delivery.journal.deferrals import Deferrals
from dispatch_mail.delivery.journal.file import (
    STATES,
    connect_for_reading,
    connect_for_writing,
    explain,
    rollback,
)
from dispatch_mail.delivery.journal.guard import reads as _reads
from dispatch_mail.delivery.journal.guard import writes as _writes
from dispatch_mail.delivery.journal.listing import ListSync, sync_list
from dispatch_mail.errors import JournalBusy, JournalError
from dispatch_mail.project.paths import shown_path

_COLUMNS = "id, email, fields, attempts, message_id, state, last_code, last_reply"
_REPLY_LIMIT = 500  # characters of a server's reply kept per row
SentReply = tuple[int, int, str]  # (row id, code, reply) of a message the relay accepted

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True)
class Row:
    id: int
    email: str
    fields: dict[str, str]
    attempts: int
    message_id: str
    state: str = "pending"
    last_code: int | None = None
    last_reply: str | None = None


class Journal(Deferrals):
    """One send's recipients and their states; the only code that speaks SQL to the file."""

    def __init__(self, path: Path, conn: sqlite3.Connection):
        self.path = path
        self.conn = conn
        self._checkpointer: Checkpointer | None = None
        self._lease: lease.Holder | None = None
        self._heartbeat: lease.Heartbeat | None = None

    # ------------------------------------------------------------------ opening
    @classmethod
    def open(cls, path: Path, *, create: bool = True) -> Journal:
        """Open (or create) a journal to send with; ``create=False`` only reads an existing one."""
        if not create:
            return cls.read(path)
        return cls(path, connect_for_writing(path))

    @classmethod
    def read(cls, path: Path) -> Journal:
        """Open an existing journal read-only: the file is not changed in any way."""
        return cls(path, connect_for_reading(path))

    @_writes
    def take_lease(self, stale_after: float = lease.DEFAULT_STALE_AFTER) -> None:
        """Hold the journal for this send alone (JournalBusy if another send holds it).

        A heartbeat refreshes the lease until close(); another host's send takes over
        a lease whose heartbeat is ``stale_after`` seconds old.
        """
        self._lease = lease.acquire(self.conn, self.path, stale_after)
        self._heartbeat = lease.Heartbeat(self.path, self._lease, stale_after).start()

    @_reads
    def lease_holder(self, stale_after: float = lease.DEFAULT_STALE_AFTER) -> lease.Holder | None:
        """The send holding this journal now, if one does."""
        held = lease.holder_of(self.conn)
        return held if held is not None and held.is_alive(stale_after) else None

    def close(self) -> None:
        self.stop_checkpoints()
        if self._heartbeat is not None:
            self._heartbeat.stop()
            self._heartbeat = None
        if self._lease is not None:
            lease.release(self.conn, self._lease)
            self._lease = None
        self.conn.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _lease_lost(self) -> JournalBusy:
        heartbeat = self._heartbeat
        holder = heartbeat.lost if heartbeat is not None else None
        who = f": {holder.describe()}" if holder is not None else " (its lease was removed)"
        return JournalBusy(
            f"{shown_path(self.path)}: another send took this journal over{who}; this one stopped",
            self.path,
            pid=holder.pid if holder else None,
            host=holder.host if holder else None,
            since=holder.since if holder else None,
        )

    # ------------------------------------------------------------------ checkpoints
    def start_checkpoints(self, interval: float = 1.0) -> None:
        """Move WAL checkpoints off the sending thread for the length of a send."""
        if self._checkpointer is None:
            self._checkpointer = Checkpointer(self.conn, self.path, interval).start()

    def stop_checkpoints(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.stop()
            self._checkpointer = None

    # ------------------------------------------------------------------ meta
    @_reads
    def get_meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return str(row[0]) if row else None

    @_writes
    def set_meta(self, key: str, value: str) -> None:
        self.conn.execute(
            "INSERT INTO meta(key, value) VALUES(?, ?)"
            " ON CONFLICT(key) DO UPDATE SET value=excluded.value",
            (key, value),
        )

    def bind(self, issue_slug: str, content_hash: str, *, force: bool = False) -> bool:
        """Tie the journal to one issue and its rendered content; True when this starts a send.

        A changed rendering is refused unless ``force``: the recipients already sent
        got the old version (the error's hint is ``"force"``).
        """
        self.check_binding(issue_slug, content_hash, force=force)
        if self.get_meta("issue") is None:
            self.set_meta("issue", issue_slug)
            self.set_meta("content_hash", content_hash)
            self.set_meta("started_at", str(time.time()))
            return True
        if self.get_meta("content_hash") != content_hash:
            self.set_meta("content_hash", content_hash)
        return False

    def check_binding(self, issue_slug: str, content_hash: str, *, force: bool = False) -> None:
        """What bind() would refuse, refused before anything in the file is written."""
        shown = shown_path(self.path)
        slug, digest = self.get_meta("issue"), self.get_meta("content_hash")
        if slug is None:
            return
        if slug != issue_slug:
            raise JournalError(
                f"{shown}: this journal belongs to issue {slug!r}, not {issue_slug!r}", self.path
            )
        if digest != content_hash and not force:
            raise JournalError(
                f"{shown}: the rendered issue changed since this send started; "
                "recipients already sent got the old version",
                self.path,
                hint="force",
            )

    # ------------------------------------------------------------------ filling
    def add(
        self, items: Iterable[Recipient | Exclusion], domain: str, slug: str
    ) -> tuple[int, int]:
        """Insert recipients (existing ones keep their state) and exclusions: (added, excluded)."""
        synced = self.sync(items, domain, slug)
        return synced.added, synced.excluded

    @_writes
    def sync(self, items: Iterable[Recipient | Exclusion], domain: str, slug: str) -> ListSync:
        """Make the journal's recipients still to send the list as it is now (listing.py)."""
        return sync_list(self.conn, items, domain, slug)

    # ------------------------------------------------------------------ recovery
    @_reads
    def in_flight(self) -> list[Row]:
        """Rows a crash left in 'sending': the server may or may not hold their message."""
        return list(self._select("WHERE state='sending' ORDER BY id"))

    @_writes
    def recover(self, resend: bool) -> list[Row]:
        """Put in-flight rows back to pending (resend) or aside as 'held' for review."""
        rows = self.in_flight()
        if rows:
            state = "pending" if resend else "held"
            reply = "interrupted while in flight: the server may already have it"
            self.conn.execute(
                "UPDATE recipients SET state=?, uncertain=1, last_reply=?, updated_at=?"
                " WHERE state='sending'",
                (state, reply, time.time()),
            )
        return rows

    @_writes
    def release_held(self) -> int:
        return self.conn.execute(
            "UPDATE recipients SET state='pending', updated_at=? WHERE state='held'", (time.time(),)
        ).rowcount

    # ------------------------------------------------------------------ sending
    @_reads
    def next_batch(self, after_id: int, limit: int) -> list[Row]:
        """Pending rows after ``after_id`` whose retry time has come, in id order."""
        return list(
            self._select(
                "WHERE state='pending' AND id>? AND not_before<=? ORDER BY id LIMIT ?",
                (after_id, time.time(), limit),
            )
        )

    @_reads
    def next_retry_at(self) -> float | None:
        """When the earliest pending row may be tried (None: nothing is pending)."""
        value = self._scalar("SELECT MIN(not_before) FROM recipients WHERE state='pending'")
        return None if value is None else float(value)

    @_reads
    def sent_since(self, since: float) -> int:
        """How many were sent after ``since`` (a time.time()): what a quota counts."""
        return int(
            self._scalar(
                "SELECT COUNT(*) FROM recipients WHERE state='sent' AND sent_at>?", (since,)
            )
        )

    @_writes
    def mark_sending(self, row_id: int, *, after_sent: SentReply | None = None) -> None:
        """Commit a row as in flight; with ``after_sent``, the connection's previous one as sent.

        One commit for both halves the journal's cost per message, and keeps the rule
        that each connection has at most one row in 'sending' on disk: the previous
        message leaves 'sending' in the very transaction in which the next one enters it.
        A send whose lease another send took over records what it sent and stops here.
        """
        if self._heartbeat is not None and self._heartbeat.is_lost:
            if after_sent is not None:
                self._sent(*after_sent)
            raise self._lease_lost()
        sending = (
            "UPDATE recipients SET state='sending', attempts=attempts+1, updated_at=? WHERE id=?",
            (time.time(), row_id),
        )
        if after_sent is None:
            self.conn.execute(*sending)
            return
        self.conn.execute("BEGIN")
        try:
            self._sent(*after_sent)
            self.conn.execute(*sending)
            self.conn.execute("COMMIT")
        except BaseException:
            rollback(self.conn)
            raise

    @_writes
    def mark_sent(self, row_id: int, code: int, reply: str) -> None:
        self._sent(row_id, code, reply)

    def _sent(self, row_id: int, code: int, reply: str) -> None:
        now = time.time()
        self.conn.execute(
            "UPDATE recipients SET state='sent', last_code=?, last_reply=?, sent_at=?, updated_at=?"
            " WHERE id=?",
            (code, reply[:_REPLY_LIMIT], now, now, row_id),
        )

    @_writes
    def mark_retry(
        self, row_id: int, code: int | None, reply: str, not_before: float, uncertain: bool = False
    ) -> None:
        self.conn.execute(
            "UPDATE recipients SET state='pending', last_code=?, last_reply=?, not_before=?,"
            " uncertain=uncertain OR ?, updated_at=? WHERE id=?",
            (code, reply[:_REPLY_LIMIT], not_before, int(uncertain), time.time(), row_id),
        )

    @_writes
    def mark_not_attempted(self, row_id: int, reply: str) -> None:
        """Back to pending, the attempt uncounted: the message never reached the relay."""
        self.conn.execute(
            "UPDATE recipients SET state='pending', attempts=MAX(0, attempts-1), last_reply=?,"
            " updated_at=? WHERE id=?",
            (f"not attempted: {reply}"[:_REPLY_LIMIT], time.time(), row_id),
        )

    @_writes
    def mark_failed(self, row_id: int, code: int | None, reply: str) -> None:
        self.conn.execute(
            "UPDATE recipients SET state='failed', last_code=?, last_reply=?, updated_at=?"
            " WHERE id=?",
            (code, reply[:_REPLY_LIMIT], time.time(), row_id),
        )

    # ------------------------------------------------------------------ reading
    @_reads
    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(STATES, 0)
        for state, n in self.conn.execute("SELECT state, COUNT(*) FROM recipients GROUP BY state"):
            counts[state] = n
        return counts

    @_reads
    def uncertain_count(self) -> int:
        return int(self._scalar("SELECT COUNT(*) FROM recipients WHERE uncertain=1"))

    def rows(self, state: str | None = None) -> Iterator[Row]:
        if state:
            return self._select("WHERE state=? ORDER BY id", (state,))
        return self._select("ORDER BY id")

    @_reads
    def exclusions(self) -> list[Exclusion]:
        return [
            Exclusion(*r)
            for r in self.conn.execute(
                "SELECT source, line, email, reason FROM exclusions ORDER BY id"
            )
        ]

    def _select(self, where: str, args: tuple[object, ...] = ()) -> Iterator[Row]:
        """The rows, streamed (a lazy cursor fails as it is read: that is translated here)."""
        try:
            for r in self.conn.execute(f"SELECT {_COLUMNS} FROM recipients {where}", args):
                yield Row(r[0], r[1], json.loads(r[2]), r[3], r[4], r[5], r[6], r[7])
        except sqlite3.Error as exc:
            raise JournalError(
                f"{shown_path(self.path)}: cannot read the journal: {explain(exc)}", self.path
            ) from None
