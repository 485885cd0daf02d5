"""The store in a shared PostgreSQL database (``DISPATCH_DATABASE_URL``), through psycopg 3.

Only this module imports psycopg, and only when a PostgreSQL URL is used: a
build never pays for it. Autocommit is off; every operation is one explicit
transaction, committed or rolled back before the store is used again. A
connection that dropped (a restart of the server, an idle timeout of a pooler)
is opened again once, and the operation run again: each one is idempotent
(an event's evidence is recorded once), so running it twice changes nothing.
Soft bounces of one address are counted under a transaction lock of that
address, so two writers cannot both miss the limit.

The URL's password never leaves this module: ``location`` and every error show
the URL without it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import TypeVar
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

import psycopg

from dispatch_mail.errors import StoreError
from dispatch_mail.suppression.migrations import (
    MIGRATIONS,
    POSTGRES,
    Migration,
    Statements,
    migrate,
)
from dispatch_mail.suppression.sqlstore import SqlStore

T = TypeVar("T")
CONNECT_TIMEOUT = 10  # seconds; libpq waits for ever without one
_SECRET_PARAMS = {"password", "sslpassword"}


class PostgresTransaction:
    """Statements of one transaction; the shared SQL's ``?`` placeholders become psycopg's."""

    def __init__(self, cursor: psycopg.Cursor[tuple[object, ...]]):
        self._cursor = cursor

    def run(self, sql: str, params: Sequence[object] = ()) -> int:
        self._cursor.execute(sql.replace("?", "%s"), tuple(params))
        return self._cursor.rowcount

    def rows(self, sql: str, params: Sequence[object] = ()) -> list[tuple[object, ...]]:
        self._cursor.execute(sql.replace("?", "%s"), tuple(params))
        return list(self._cursor.fetchall())


class PostgresStore(SqlStore):
    """The suppression store in a PostgreSQL database (tables created, and migrated, on open)."""

    def __init__(self, url: str, *, migrations: Sequence[Migration] = MIGRATIONS):
        self._url = url
        self.location = redacted(url)
        self._secrets = _secrets_of(url)
        self._lock = threading.RLock()
        self._conn: psycopg.Connection[tuple[object, ...]] | None = None
        try:
            migrate(
                lambda work: self._transact(work, write=True), POSTGRES, self.location, migrations
            )
        except BaseException:
            self.close()
            raise

    def _connection(self) -> psycopg.Connection[tuple[object, ...]]:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(
                self._url, autocommit=False, connect_timeout=CONNECT_TIMEOUT
            )
        return self._conn

    def _hold(self, tx: Statements, key: str) -> None:
        tx.rows("SELECT pg_advisory_xact_lock(hashtext(?))", (key,))

    def _transact(self, work: Callable[[Statements], T], *, write: bool) -> T:
        with self._lock:
            for attempt in (1, 2):
                try:
                    return self._once(work)
                except psycopg.OperationalError as exc:
                    if attempt == 1 and self._conn is not None and self._conn.broken:
                        self._discard()
                        continue  # the connection dropped: once more, on a new one
                    raise self._error(exc) from None
                except psycopg.Error as exc:
                    raise self._error(exc) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _once(self, work: Callable[[Statements], T]) -> T:
        conn = self._connection()
        try:
            with conn.cursor() as cursor:
                result = work(PostgresTransaction(cursor))
            conn.commit()
            return result
        except BaseException:
            if not conn.closed and not conn.broken:
                try:
                    conn.rollback()
                except psycopg.Error:
                    self._discard()
            raise

    def _discard(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except psycopg.Error:
                pass
        self._conn = None

    def _error(self, exc: psycopg.Error) -> StoreError:
        cause = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
        for secret in self._secrets:
            cause = cause.replace(secret, "***")
        cause = cause or type(exc).__name__
        return StoreError(
            f"{self.location}: cannot use the suppression store: {cause}", location=self.location
        )

    def close(self) -> None:
        with self._lock:
            self._discard()


def redacted(url: str) -> str:
    """The URL as it may be shown: no password, in the user part or in the query."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if "@" in netloc:
            user, host = netloc.rsplit("@", 1)
            netloc = f"{user.split(':', 1)[0]}@{host}" if user else host
        query = [(k, v) for k, v in parse_qsl(parts.query) if k.lower() not in _SECRET_PARAMS]
        return urlunsplit((parts.scheme, netloc, parts.path, urlencode(query), ""))
    except ValueError:
        return f"{url.split(':', 1)[0]}://(unreadable URL)"


def _secrets_of(url: str) -> list[str]:
    """The URL's passwords, to be blanked out of any message that might repeat them."""
    try:
        parts = urlsplit(url)
        found = [parts.password or ""]
        found += [v for k, v in parse_qsl(parts.query) if k.lower() in _SECRET_PARAMS]
    except ValueError:
        return []
    found += [unquote(secret) for secret in found]
    return [secret for secret in found if len(secret) >= 3]
