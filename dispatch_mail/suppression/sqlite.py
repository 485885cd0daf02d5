"""The store in one SQLite file beside the project: ours or refused, shared safely by processes.

The file is identified before anything in it changes (WAL mode is persistent, and
a database that is not ours must be left exactly as it was found): an SQLite
file carries our application_id, or is empty. Writes take the write lock at
BEGIN (``BEGIN IMMEDIATE``), so the endpoint, a bounce run and a send in
parallel each wait their turn (up to BUSY_TIMEOUT) instead of failing midway.
One connection serves every thread of the process, one at a time.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from dispatch_mail.errors import StoreError
from dispatch_mail.project.paths import shown_path
from dispatch_mail.suppression.migrations import MIGRATIONS, SQLITE, Migration, Statements, migrate
from dispatch_mail.suppression.sqlstore import SqlStore

T = TypeVar("T")
APPLICATION_ID = 0x44535550  # "DSUP"; a send journal is "DSPT"
BUSY_TIMEOUT = 10.0  # seconds a write waits for another process's to end
_SQLITE_HEADER = b"SQLite format 3\x00"


class SqliteTransaction:
    """Statements of one transaction on an SQLite connection."""

    def __init__(self, conn: sqlite3.Connection):
        self._conn = conn

    def run(self, sql: str, params: Sequence[object] = ()) -> int:
        return self._conn.execute(sql, params).rowcount

    def rows(self, sql: str, params: Sequence[object] = ()) -> list[tuple[object, ...]]:
        return [tuple(row) for row in self._conn.execute(sql, params).fetchall()]


class SqliteStore(SqlStore):
    """The suppression store in an SQLite file (created, and migrated forward, on open)."""

    def __init__(self, path: Path, *, migrations: Sequence[Migration] = MIGRATIONS):
        self.path = path
        self.location = shown_path(path)
        self._lock = threading.RLock()
        self._conn = self._open(migrations)

    def _open(self, migrations: Sequence[Migration]) -> sqlite3.Connection:
        _check_header(self.path, self.location)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise self._error(f"cannot create its folder: {exc.strerror or exc}") from None
        try:
            conn = sqlite3.connect(
                str(self.path), isolation_level=None, timeout=BUSY_TIMEOUT, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise self._error(explain(exc)) from None
        self._conn = conn
        try:
            self._prepare(conn, migrations)
        except BaseException:
            conn.close()
            raise
        return conn

    def _prepare(self, conn: sqlite3.Connection, migrations: Sequence[Migration]) -> None:
        deadline = time.monotonic() + BUSY_TIMEOUT
        while True:
            try:
                self._identify(conn, claim=False)
                conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT * 1000)}")
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                break
            except sqlite3.OperationalError as exc:
                # another process is switching a new file to WAL this very moment: SQLite
                # answers some steps of that race with "busy" at once, without waiting
                if _is_busy(exc) and time.monotonic() < deadline:
                    time.sleep(0.02)
                    continue
                raise self._error(explain(exc)) from None
            except sqlite3.Error as exc:
                raise self._error(explain(exc)) from None
        migrate(self._claimed, SQLITE, self.location, migrations)

    def _claimed(self, work: Callable[[Statements], T]) -> T:
        """A migration step's transaction: the file is marked ours in the first one."""

        def claim_then(tx: Statements) -> T:
            self._identify(self._conn, claim=True)
            return work(tx)

        return self._transact(claim_then, write=True)

    def _identify(self, conn: sqlite3.Connection, *, claim: bool) -> None:
        """Refuse a database not ours; with ``claim``, mark a new one ours (inside its write)."""
        own = not conn.in_transaction
        if own:  # one snapshot: the reads must not straddle another process's creation
            conn.execute("BEGIN")
        try:
            app_id = conn.execute("PRAGMA application_id").fetchone()[0]
            tables = conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0]
        finally:
            if own:
                conn.execute("ROLLBACK")
        if app_id == APPLICATION_ID:
            return
        if app_id != 0 or tables:
            raise self._error("an SQLite database that is not a dispatch suppression store")
        if claim:
            conn.execute(f"PRAGMA application_id={APPLICATION_ID}")

    # ------------------------------------------------------------------ transactions
    def _transact(self, work: Callable[[Statements], T], *, write: bool) -> T:
        with self._lock:
            conn = self._conn
            try:
                conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                try:
                    result = work(SqliteTransaction(conn))
                    conn.execute("COMMIT")
                except BaseException:
                    rollback(conn)
                    raise
            except sqlite3.Error as exc:
                raise self._error(explain(exc)) from None
            return result

    def _error(self, cause: str) -> StoreError:
        return StoreError(
            f"{self.location}: cannot use the suppression store: {cause}", location=self.location
        )

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def _check_header(path: Path, shown: str) -> None:
    """A file with bytes in it must be SQLite; anything else is refused before it is opened."""
    try:
        if not path.exists() or path.stat().st_size == 0:
            return
        with path.open("rb") as handle:
            header = handle.read(16)
    except OSError as exc:
        raise StoreError(
            f"{shown}: cannot read the suppression store: {exc.strerror or exc}", location=shown
        ) from None
    if header != _SQLITE_HEADER:
        raise StoreError(
            f"{shown}: cannot use the suppression store: not an SQLite file", location=shown
        )


def rollback(conn: sqlite3.Connection) -> None:
    """End a failed transaction, if SQLite has not already (it does on a full disk)."""
    if conn.in_transaction:
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass  # the connection is unusable; the error that brought us here is the one to tell


def explain(exc: sqlite3.Error) -> str:
    """What SQLite's error means, in a few words."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    if name.startswith("SQLITE_FULL"):
        return "the disk is full"
    if name.startswith("SQLITE_READONLY"):
        return "the file is read-only (not writable)"
    if name.startswith("SQLITE_IOERR"):
        return f"the disk refused a write ({exc})"
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return f"another process kept it locked for more than {BUSY_TIMEOUT:g} s"
    if name.startswith("SQLITE_CANTOPEN"):
        return "cannot open the file or create its write-ahead log beside it"
    if name.startswith(("SQLITE_NOTADB", "SQLITE_CORRUPT")):
        return f"the file is damaged or not a database ({exc})"
    return " ".join(str(exc).split())


def _is_busy(exc: sqlite3.Error) -> bool:
    return (getattr(exc, "sqlite_errorname", "") or "").startswith(("SQLITE_BUSY", "SQLITE_LOCKED"))
