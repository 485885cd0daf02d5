"""The journal as a file: ours or refused, created without a race, read without a single write.

A file is identified before anything in it changes (WAL mode is persistent, and a
foreign database must be left exactly as it was found). Two processes creating
the same journal at once both see an empty file: the schema is created inside a
write transaction, after looking again, so one creates it and the other finds it.
``dispatch status`` opens the file read-only (``mode=ro``), so reading a journal
while a send writes it, or reading a file that is not a journal, changes nothing.
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

from dispatch_mail.errors import JournalError, UsageError
from dispatch_mail.project.paths import shown_path
from dispatch_mail.suppression.sqlite import (
    rollback as rollback,  # one way to end a failed transaction
)

APPLICATION_ID = 0x44535054  # "DSPT"
SCHEMA_VERSION = 2  # 2: the 'deferred' state and deferred_at
READABLE_VERSIONS = (1, 2)  # status reads a journal of a dispatch before deferrals as it is
STATES = ("pending", "sending", "sent", "deferred", "failed", "held")
BUSY_TIMEOUT = 10.0  # seconds a connection waits for another one's write to end

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
    sent_at REAL,
    deferred_at REAL,  -- when a temporary refusal first outlasted a run: its lifetime starts here
    deferrals INTEGER NOT NULL DEFAULT 0
);
-- no index on state: the sender reads pending rows in id order from where it left off (a rowid
-- range), and every index would cost each of the two commits per message a few more µs
CREATE TABLE exclusions (
    id INTEGER PRIMARY KEY, source TEXT, line INTEGER, email TEXT, reason TEXT
);
"""
_SQLITE_HEADER = b"SQLite format 3\x00"


# ------------------------------------------------------------------ opening
def connect_for_writing(path: Path) -> sqlite3.Connection:
    """A connection to a journal of ours (created if there is none yet), ready for a send."""
    shown = shown_path(path)
    exists = _has_content(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise JournalError(
            f"{shown}: cannot create the folder {shown_path(path.parent)}: {exc.strerror or exc}",
            path,
        ) from None
    try:
        conn = sqlite3.connect(str(path), isolation_level=None, timeout=BUSY_TIMEOUT)
    except sqlite3.Error as exc:
        raise JournalError(f"{shown}: cannot open the journal ({exc})", path) from None
    deadline = time.monotonic() + BUSY_TIMEOUT
    while True:
        try:
            _prepare(conn, path)
            return conn
        except sqlite3.OperationalError as exc:
            # another process is switching a new file to WAL mode this very moment: SQLite
            # answers some steps of that race with "busy" at once, without waiting; so do we
            if _is_busy(exc) and time.monotonic() < deadline:
                time.sleep(0.02)
                continue
            conn.close()
            raise opening_error(path, exc, exists) from None
        except sqlite3.Error as exc:
            conn.close()
            raise opening_error(path, exc, exists) from None
        except BaseException:
            conn.close()
            raise


def _prepare(conn: sqlite3.Connection, path: Path) -> None:
    """Identify the file, then set it up: the schema when it is new, a full check always."""
    _identify(conn, path, fresh_allowed=True)
    _check_writable(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    _create_schema(conn, path)
    _check_integrity(conn, path)


def connect_for_reading(path: Path) -> sqlite3.Connection:
    """A read-only connection to an existing journal of ours: nothing in the file changes."""
    shown = shown_path(path)
    if not path.exists():
        raise UsageError(f"{shown}: no journal here (nothing has been sent for this issue yet)")
    if not _has_content(path):
        raise _refusal(path, "an empty file, not a dispatch journal", reading=True)
    try:
        conn = _read_only(path)
        try:
            _identify(conn, path, fresh_allowed=False)
            _check_integrity(conn, path)
        except BaseException:
            conn.close()
            raise
    except sqlite3.Error as exc:
        raise opening_error(path, exc, True, writing=False) from None
    return conn


def _read_only(path: Path) -> sqlite3.Connection:
    uri = path.resolve().as_uri()
    try:
        conn = sqlite3.connect(f"{uri}?mode=ro", uri=True, isolation_level=None)
        conn.execute("PRAGMA schema_version").fetchone()  # opens the file, and a WAL's index
        return conn
    except sqlite3.OperationalError as exc:
        # a WAL journal in a folder we may not write, left by a send that ended cleanly: SQLite
        # cannot make the index it reads through, and no writer can exist (it would need the
        # -wal file beside the journal), so the file is read as the unchanging thing it is
        wal = path.with_name(path.name + "-wal")
        if exc.sqlite_errorname != "SQLITE_CANTOPEN" or wal.exists():
            raise
        if os.access(path.parent, os.W_OK):
            raise
        return sqlite3.connect(f"{uri}?immutable=1", uri=True, isolation_level=None)


def _has_content(path: Path) -> bool:
    """Whether the file exists with bytes in it; anything else in it than SQLite is refused."""
    shown = shown_path(path)
    try:
        if not path.exists() or path.stat().st_size == 0:
            return False
        with path.open("rb") as handle:
            header = handle.read(16)
    except OSError as exc:
        raise JournalError(
            f"{shown}: cannot read the journal: {exc.strerror or exc}", path
        ) from None
    if header != _SQLITE_HEADER:
        raise _refusal(path, "not a dispatch journal (not an SQLite file)")
    return True


def _check_writable(path: Path) -> None:
    """A send records every message: a journal it cannot write is refused before it starts."""
    problem = _not_writable(path)
    if problem is not None:
        raise problem


def _not_writable(path: Path) -> JournalError | None:
    shown = shown_path(path)
    if path.exists() and not os.access(path, os.W_OK):
        return JournalError(
            f"{shown}: the journal is read-only (not writable); a send records every message in it",
            path,
        )
    if not os.access(path.parent, os.W_OK):
        return JournalError(
            f"{shown}: the journal's folder is not writable; a send keeps its write-ahead log "
            "beside the journal",
            path,
        )
    return None


def _identify(conn: sqlite3.Connection, path: Path, *, fresh_allowed: bool) -> bool:
    """True for a file with nothing in it yet; refuses a file that is not a journal of ours."""
    own = not conn.in_transaction
    if own:  # one snapshot: the three reads must not straddle another process's creation
        conn.execute("BEGIN")
    try:
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        tables = _has_tables(conn)
    finally:
        if own:
            rollback(conn)
    if app_id == 0 and version == 0 and not tables:
        if not fresh_allowed:
            raise _refusal(path, "an empty SQLite database, not a dispatch journal", reading=True)
        return True
    if app_id != APPLICATION_ID:
        raise _refusal(path, "an SQLite file that is not a dispatch journal")
    if version not in READABLE_VERSIONS:
        raise JournalError(
            f"{shown_path(path)}: journal schema version {version}; "
            f"this dispatch reads version {SCHEMA_VERSION}",
            path,
        )
    return False


def _create_schema(conn: sqlite3.Connection, path: Path) -> None:
    """The schema, created by exactly one of the processes that found the file empty."""
    conn.execute("BEGIN IMMEDIATE")  # waits for another creator to finish
    try:
        if _identify(conn, path, fresh_allowed=True):  # look again, now that we alone write
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
            conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        elif conn.execute("PRAGMA user_version").fetchone()[0] == 1:
            _upgrade_from_1(conn)
        conn.execute("COMMIT")
    except BaseException:
        rollback(conn)
        raise


def _upgrade_from_1(conn: sqlite3.Connection) -> None:
    """Version 1 → 2, inside the caller's transaction: the state CHECK gains 'deferred'.

    SQLite cannot alter a CHECK constraint, so the table is rebuilt with its rows and ids.
    """
    conn.execute("ALTER TABLE recipients RENAME TO recipients_v1")
    table = _SCHEMA.split("CREATE TABLE recipients", 1)[1].split(";", 1)[0]
    conn.execute(f"CREATE TABLE recipients{table}")
    columns = (
        "id, email, email_key, fields, state, attempts, message_id, last_code, last_reply,"
        " not_before, uncertain, created_at, updated_at, sent_at"
    )
    conn.execute(f"INSERT INTO recipients({columns}) SELECT {columns} FROM recipients_v1")
    conn.execute("DROP TABLE recipients_v1")
    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")


def _check_integrity(conn: sqlite3.Connection, path: Path) -> None:
    # integrity_check, not quick_check: it also checks that the unique index on email_key
    # agrees with the rows (add() relies on it never to add someone twice, sent or not);
    # about 80 ms for 100,000 recipients. SQLite's report spans lines; the error is one line.
    problems = [" ".join(str(r[0]).split()) for r in conn.execute("PRAGMA integrity_check(3)")]
    if problems != ["ok"]:
        detail = "; ".join(problems)
        detail = detail if len(detail) <= 200 else detail[:199] + "…"
        raise _refusal(path, f"the journal is damaged ({detail})")


def _has_tables(conn: sqlite3.Connection) -> bool:
    return bool(conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0] > 0)


# ------------------------------------------------------------------ failures, in plain words
def explain(exc: sqlite3.Error) -> str:
    """What SQLite's error means for the person sending, in a few words."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    if name.startswith("SQLITE_FULL"):
        return "the disk is full"
    if name.startswith("SQLITE_READONLY"):
        return "the journal is read-only (not writable)"
    if name.startswith("SQLITE_IOERR"):
        return f"the disk refused a write ({exc})"
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return "another process kept the journal locked"
    return str(exc)


def _is_busy(exc: sqlite3.Error) -> bool:
    return (getattr(exc, "sqlite_errorname", "") or "").startswith(("SQLITE_BUSY", "SQLITE_LOCKED"))


def _is_damage(exc: sqlite3.Error) -> bool:
    name = getattr(exc, "sqlite_errorname", "") or ""
    return name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")) or not name


def opening_error(
    path: Path, exc: sqlite3.Error, existed: bool, *, writing: bool = True
) -> JournalError:
    """The one-line error for a journal that could not be opened."""
    if existed and _is_damage(exc):
        return _refusal(path, f"the journal is damaged ({exc})")
    if writing and getattr(exc, "sqlite_errorname", "") == "SQLITE_CANTOPEN":
        problem = _not_writable(path)  # SQLite could not make the -wal or -shm file beside it
        if problem is not None:
            return problem
    return JournalError(f"{shown_path(path)}: cannot use the journal: {explain(exc)}", path)


def _refusal(path: Path, problem: str, *, reading: bool = False) -> JournalError:
    """The one-line error for a file we will not resume from (or, reading, not read)."""
    if reading:
        return JournalError(f"{shown_path(path)}: {problem}", path)
    return JournalError(f"{shown_path(path)}: {problem}; refusing to resume from it", path)
