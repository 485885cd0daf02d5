"""The send journal: one SQLite file per issue send, so that nothing is lost and nothing sent twice.

A recipient's row moves pending → sending → sent | failed (or back to pending
for a retry). It is committed as ``sending`` before the message's transaction
starts and as ``sent`` only after the server's 250 to DATA, so after a crash
at any moment the only recipients whose fate is unknown are those left in
``sending``: at most one per connection. WAL mode with synchronous=NORMAL
keeps every commit durable against a crash of the process. Every SQL statement
of a send is here: the engine calls named methods.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dispatch_mail.delivery.audience import Exclusion, Recipient, dedupe_key
from dispatch_mail.errors import JournalError, UsageError
from dispatch_mail.mail.headers import make_message_id
from dispatch_mail.project.paths import shown_path

APPLICATION_ID = 0x44535054  # "DSPT"
SCHEMA_VERSION = 1
STATES = ("pending", "sending", "sent", "failed", "held")

_STATE_LIST = ",".join(f"'{state}'" for state in STATES)  # the CHECK constraint's list
_SCHEMA = f"""
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE recipients (
    id INTEGER PRIMARY KEY,
    email TEXT NOT NULL,
    email_key TEXT NOT NULL UNIQUE,
    fields TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ({_STATE_LIST})),
    attempts INTEGER NOT NULL DEFAULT 0,
    message_id TEXT NOT NULL,
    last_code INTEGER,
    last_reply TEXT,
    not_before REAL NOT NULL DEFAULT 0,
    uncertain INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    sent_at REAL
);
-- no index on state: the sender reads pending rows in id order from where it left off (a rowid
-- range), and every index would cost each of the two commits per message a few more µs
CREATE TABLE exclusions (
    id INTEGER PRIMARY KEY, source TEXT, line INTEGER, email TEXT, reason TEXT
);
"""
_COLUMNS = "id, email, fields, attempts, message_id, state, last_code, last_reply"
_REPLY_LIMIT = 500  # characters of a server's reply kept per row
SentReply = tuple[int, int, str]  # (row id, code, reply) of a message the relay accepted


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


class Journal:
    """One send's recipients and their states; the only code that speaks SQL to the file."""

    def __init__(self, path: Path, conn: sqlite3.Connection):
        self.path = path
        self.conn = conn
        self._checkpointer: tuple[threading.Thread, threading.Event] | None = None

    # ------------------------------------------------------------------ opening
    @classmethod
    def open(cls, path: Path, *, create: bool = True) -> Journal:
        """Open (or create) a journal, refusing anything that is not one of ours."""
        shown = shown_path(path)
        exists = path.exists() and path.stat().st_size > 0
        if not exists and not create:
            raise UsageError(f"{shown}: no journal here (nothing has been sent for this issue yet)")
        if exists:
            with path.open("rb") as handle:
                if handle.read(16) != b"SQLite format 3\x00":
                    raise _refusal(path, "not a dispatch journal (not an SQLite file)")
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            conn = sqlite3.connect(str(path), isolation_level=None, timeout=10)
        except sqlite3.Error as exc:
            raise JournalError(f"{shown}: cannot open the journal ({exc})", path) from None
        try:
            _prepare(conn, path, exists)
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise _refusal(path, f"the journal is damaged ({exc})") from None
        except BaseException:
            conn.close()
            raise
        return cls(path, conn)

    def close(self) -> None:
        self.stop_checkpoints()
        self.conn.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ checkpoints
    def start_checkpoints(self, interval: float = 1.0) -> None:
        """Move WAL checkpoints off the sending thread for the length of a send.

        SQLite's automatic checkpoint runs inside a commit and fsyncs: on the event
        loop it stalls every connection for a few ms (3% of a send's time). A thread
        with its own connection checkpoints passively instead; commits stay as durable.
        """
        if self._checkpointer is not None:
            return
        self.conn.execute("PRAGMA wal_autocheckpoint=0")
        stop = threading.Event()

        def loop() -> None:
            conn = sqlite3.connect(str(self.path), timeout=10, check_same_thread=False)
            try:
                while not stop.wait(interval):
                    try:
                        conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                    except sqlite3.Error:
                        pass  # busy or closing: the next round tries again
            finally:
                conn.close()

        thread = threading.Thread(target=loop, name="dispatch-journal-checkpoint", daemon=True)
        thread.start()
        self._checkpointer = (thread, stop)

    def stop_checkpoints(self) -> None:
        if self._checkpointer is None:
            return
        thread, stop = self._checkpointer
        stop.set()
        thread.join(timeout=5)
        self._checkpointer = None
        try:
            self.conn.execute("PRAGMA wal_autocheckpoint=1000")
            self.conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error:
            pass

    # ------------------------------------------------------------------ meta
    def get_meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return str(row[0]) if row else None

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
        shown = shown_path(self.path)
        slug, digest = self.get_meta("issue"), self.get_meta("content_hash")
        if slug is None:
            self.set_meta("issue", issue_slug)
            self.set_meta("content_hash", content_hash)
            self.set_meta("started_at", str(time.time()))
            return True
        if slug != issue_slug:
            raise JournalError(
                f"{shown}: this journal belongs to issue {slug!r}, not {issue_slug!r}", self.path
            )
        if digest != content_hash:
            if not force:
                raise JournalError(
                    f"{shown}: the rendered issue changed since this send started; "
                    "recipients already sent got the old version",
                    self.path,
                    hint="force",
                )
            self.set_meta("content_hash", content_hash)
        return False

    # ------------------------------------------------------------------ filling
    def add(
        self, items: Iterable[Recipient | Exclusion], domain: str, slug: str
    ) -> tuple[int, int]:
        """Insert recipients (existing ones keep their state) and exclusions: (added, excluded)."""
        added = excluded = 0
        now = time.time()
        batch: list[tuple[str, str, str, str, float, float]] = []
        exclusions: list[tuple[str, int, str, str]] = []
        prefix = secrets.token_hex(4)

        def flush() -> None:
            nonlocal added
            if batch:
                cur = self.conn.executemany(
                    "INSERT OR IGNORE INTO recipients(email, email_key, fields, message_id,"
                    " created_at, updated_at) VALUES (?,?,?,?,?,?)",
                    batch,
                )
                added += cur.rowcount
                batch.clear()

        self.conn.execute("BEGIN IMMEDIATE")
        try:
            self.conn.execute("DELETE FROM exclusions")
            for n, item in enumerate(items):
                if isinstance(item, Recipient):
                    # the Message-ID is fixed once: every retry of this recipient reuses it
                    # (RFC 1047 duplicates)
                    message_id = make_message_id(slug, prefix, n, domain)
                    fields = json.dumps(item.fields, ensure_ascii=False)
                    batch.append((item.email, dedupe_key(item.email), fields, message_id, now, now))
                    if len(batch) >= 2000:
                        flush()
                else:
                    exclusions.append((item.path, item.line, item.email, item.reason))
                    excluded += 1
            flush()
            self.conn.executemany(
                "INSERT INTO exclusions(source, line, email, reason) VALUES (?,?,?,?)", exclusions
            )
            # whoever unsubscribed or bounced since the send started is not sent to now (a send
            # can span days under a daily quota); rows already sent or failed keep their history
            self.conn.executemany(
                "DELETE FROM recipients WHERE email_key=?"
                " AND state IN ('pending','held','sending')",
                [(dedupe_key(e[2]),) for e in exclusions if e[3].startswith("suppressed") and e[2]],
            )
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        return added, excluded

    # ------------------------------------------------------------------ recovery
    def in_flight(self) -> list[Row]:
        """Rows a crash left in 'sending': the server may or may not hold their message."""
        return list(self._select("WHERE state='sending' ORDER BY id"))

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

    def release_held(self) -> int:
        return self.conn.execute(
            "UPDATE recipients SET state='pending', updated_at=? WHERE state='held'", (time.time(),)
        ).rowcount

    # ------------------------------------------------------------------ sending
    def next_batch(self, after_id: int, limit: int) -> list[Row]:
        """Pending rows after ``after_id`` whose retry time has come, in id order."""
        return list(
            self._select(
                "WHERE state='pending' AND id>? AND not_before<=? ORDER BY id LIMIT ?",
                (after_id, time.time(), limit),
            )
        )

    def next_retry_at(self) -> float | None:
        """When the earliest pending row may be tried (None: nothing is pending)."""
        value = self._scalar("SELECT MIN(not_before) FROM recipients WHERE state='pending'")
        return None if value is None else float(value)

    def sent_since(self, since: float) -> int:
        """How many were sent after ``since`` (a time.time()): what a quota counts."""
        return int(
            self._scalar(
                "SELECT COUNT(*) FROM recipients WHERE state='sent' AND sent_at>?", (since,)
            )
        )

    def mark_sending(self, row_id: int, *, after_sent: SentReply | None = None) -> None:
        """Commit a row as in flight; with ``after_sent``, the connection's previous one as sent.

        One commit for both halves the journal's cost per message, and keeps the rule
        that each connection has at most one row in 'sending' on disk: the previous
        message leaves 'sending' in the very transaction in which the next one enters it.
        """
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
            self.conn.execute("ROLLBACK")
            raise

    def mark_sent(self, row_id: int, code: int, reply: str) -> None:
        self._sent(row_id, code, reply)

    def _sent(self, row_id: int, code: int, reply: str) -> None:
        now = time.time()
        self.conn.execute(
            "UPDATE recipients SET state='sent', last_code=?, last_reply=?, sent_at=?, updated_at=?"
            " WHERE id=?",
            (code, reply[:_REPLY_LIMIT], now, now, row_id),
        )

    def mark_retry(
        self, row_id: int, code: int | None, reply: str, not_before: float, uncertain: bool = False
    ) -> None:
        self.conn.execute(
            "UPDATE recipients SET state='pending', last_code=?, last_reply=?, not_before=?,"
            " uncertain=uncertain OR ?, updated_at=? WHERE id=?",
            (code, reply[:_REPLY_LIMIT], not_before, int(uncertain), time.time(), row_id),
        )

    def mark_not_attempted(self, row_id: int, reply: str) -> None:
        """Back to pending, the attempt uncounted: the message never reached the relay."""
        self.conn.execute(
            "UPDATE recipients SET state='pending', attempts=MAX(0, attempts-1), last_reply=?,"
            " updated_at=? WHERE id=?",
            (f"not attempted: {reply}"[:_REPLY_LIMIT], time.time(), row_id),
        )

    def mark_failed(self, row_id: int, code: int | None, reply: str) -> None:
        self.conn.execute(
            "UPDATE recipients SET state='failed', last_code=?, last_reply=?, updated_at=?"
            " WHERE id=?",
            (code, reply[:_REPLY_LIMIT], time.time(), row_id),
        )

    # ------------------------------------------------------------------ reading
    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(STATES, 0)
        for state, n in self.conn.execute("SELECT state, COUNT(*) FROM recipients GROUP BY state"):
            counts[state] = n
        return counts

    def uncertain_count(self) -> int:
        return int(self._scalar("SELECT COUNT(*) FROM recipients WHERE uncertain=1"))

    def rows(self, state: str | None = None) -> Iterator[Row]:
        if state:
            return self._select("WHERE state=? ORDER BY id", (state,))
        return self._select("ORDER BY id")

    def exclusions(self) -> list[Exclusion]:
        return [
            Exclusion(*r)
            for r in self.conn.execute(
                "SELECT source, line, email, reason FROM exclusions ORDER BY id"
            )
        ]

    def _select(self, where: str, args: tuple[object, ...] = ()) -> Iterator[Row]:
        for r in self.conn.execute(f"SELECT {_COLUMNS} FROM recipients {where}", args):
            yield Row(r[0], r[1], json.loads(r[2]), r[3], r[4], r[5], r[6], r[7])

    def _scalar(self, sql: str, args: tuple[object, ...] = ()) -> Any:
        return self.conn.execute(sql, args).fetchone()[0]


def _prepare(conn: sqlite3.Connection, path: Path, exists: bool) -> None:
    """Identify the file, then set it up; a new one gets the schema, every one a full check."""
    # identify the file before changing anything in it: WAL mode is persistent,
    # and a foreign database must be left exactly as it was found
    app_id = conn.execute("PRAGMA application_id").fetchone()[0]
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    fresh = not exists or (app_id == 0 and version == 0 and not _has_tables(conn))
    if not fresh and app_id != APPLICATION_ID:
        raise _refusal(path, "an SQLite file that is not a dispatch journal")
    if not fresh and version != SCHEMA_VERSION:
        raise JournalError(
            f"{shown_path(path)}: journal schema version {version}; "
            f"this dispatch reads version {SCHEMA_VERSION}",
            path,
        )
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    if fresh:
        conn.executescript(
            f"BEGIN; {_SCHEMA} PRAGMA application_id={APPLICATION_ID};"
            f" PRAGMA user_version={SCHEMA_VERSION}; COMMIT;"
        )
    # integrity_check, not quick_check: it also checks that the unique index on email_key
    # agrees with the rows (add() relies on it never to add someone twice, sent or not);
    # about 80 ms for 100,000 recipients. SQLite's report spans lines; the error is one line.
    problems = [" ".join(str(r[0]).split()) for r in conn.execute("PRAGMA integrity_check(3)")]
    if problems != ["ok"]:
        detail = "; ".join(problems)
        detail = detail if len(detail) <= 200 else detail[:199] + "…"
        raise _refusal(path, f"the journal is damaged ({detail})")


def _refusal(path: Path, problem: str) -> JournalError:
    """The one-line error for a file we will not resume from."""
    return JournalError(f"{shown_path(path)}: {problem}; refusing to resume from it", path)


def _has_tables(conn: sqlite3.Connection) -> bool:
    return bool(conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0] > 0)
