"""The store's schema as a list of steps, run forward on open by both backends.

A store records the version it is at in ``dispatch_schema``, one row a step.
Each step runs in a transaction of its own, its row written in that same
transaction, so a step that fails leaves the store exactly at the version
before it; the next open tries again. Two processes opening one store at once
take a lock first and look again, so each step runs once. A store at a newer
version than this code knows is refused: it was written by a newer dispatch,
and writing it with older rules could lose what the newer one keeps.

Tables are prefixed ``dispatch_``: a shared PostgreSQL database may hold other
applications' tables. The SQL is written once; the few words the two dialects
spell differently are filled in per backend (``{id}``, ``{real}``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from dispatch_mail.errors import StoreError

T = TypeVar("T")


class Statements(Protocol):
    """What a step needs of a transaction: run a statement, read rows (``?`` placeholders)."""

    def run(self, sql: str, params: Sequence[object] = ()) -> int: ...

    def rows(self, sql: str, params: Sequence[object] = ()) -> list[tuple[object, ...]]: ...


@dataclass(frozen=True)
class Dialect:
    """How one backend spells what the other spells differently."""

    name: str
    words: dict[str, str]  # {id}: an auto-numbered primary key; {real}: a float column
    lock: str = ""  # a statement that serializes migrating processes ("" when BEGIN does)

    def spell(self, statement: str) -> str:
        return statement.format_map(self.words)


SQLITE = Dialect("sqlite", {"id": "INTEGER PRIMARY KEY", "real": "REAL"})
POSTGRES = Dialect(
    "postgresql",
    {"id": "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY", "real": "DOUBLE PRECISION"},
    lock="SELECT pg_advisory_xact_lock(1146310740)",  # 'DSPT': one lock for every dispatch store
)


@dataclass(frozen=True)
class Migration:
    version: int
    summary: str
    statements: tuple[str, ...]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "suppressions, and the events that made them (each evidence once)",
        (
            """CREATE TABLE dispatch_suppressions (
                id {id},
                list TEXT NOT NULL,
                email_key TEXT NOT NULL,
                email TEXT NOT NULL,
                reason TEXT NOT NULL,
                source TEXT NOT NULL,
                at {real} NOT NULL,
                issue TEXT,
                evidence TEXT,
                UNIQUE (list, email_key)
            )""",
            "CREATE INDEX dispatch_suppressions_key ON dispatch_suppressions (email_key)",
            """CREATE TABLE dispatch_events (
                id {id},
                evidence TEXT NOT NULL UNIQUE,
                kind TEXT NOT NULL,
                email_key TEXT NOT NULL,
                at {real} NOT NULL,
                detail TEXT NOT NULL,
                source TEXT NOT NULL
            )""",
            "CREATE INDEX dispatch_events_count ON dispatch_events (email_key, kind, at)",
        ),
    ),
    Migration(
        2,
        "the history of lifted suppressions: who, when, by what",
        (
            """CREATE TABLE dispatch_lifted (
                id {id},
                list TEXT NOT NULL,
                email_key TEXT NOT NULL,
                email TEXT NOT NULL,
                reason TEXT NOT NULL,
                source TEXT NOT NULL,
                at {real} NOT NULL,
                issue TEXT,
                evidence TEXT,
                lifted_at {real} NOT NULL,
                lifted_by TEXT NOT NULL,
                lifted_evidence TEXT
            )""",
            "CREATE INDEX dispatch_lifted_key ON dispatch_lifted (email_key)",
        ),
    ),
)
LATEST = MIGRATIONS[-1].version

_VERSION_TABLE = """CREATE TABLE IF NOT EXISTS dispatch_schema (
    version INTEGER PRIMARY KEY, summary TEXT NOT NULL, applied_at {real} NOT NULL
)"""

# runs ``step`` in one transaction of the backend, committed when it returns
Transact = Callable[[Callable[[Statements], T]], T]


def current_version(tx: Statements) -> int:
    row = tx.rows("SELECT MAX(version) FROM dispatch_schema")
    value = row[0][0] if row else None
    return int(value) if isinstance(value, int) else 0


def migrate(
    transact: Transact[int],
    dialect: Dialect,
    location: str,
    migrations: Sequence[Migration] = MIGRATIONS,
) -> int:
    """Bring the store up to the last of ``migrations``; the version it is at afterwards."""
    known = migrations[-1].version if migrations else 0

    def start(tx: Statements) -> int:
        _lock(tx, dialect)
        tx.run(dialect.spell(_VERSION_TABLE))
        return current_version(tx)

    version = transact(start)
    if version > known:
        raise StoreError(
            f"{location}: the store is at schema version {version}, written by a newer "
            f"dispatch (this one knows up to version {known}); upgrade dispatch",
            location=location,
        )
    for migration in migrations:
        if migration.version <= version:
            continue

        def step(tx: Statements, migration: Migration = migration) -> int:
            _lock(tx, dialect)
            found = current_version(tx)
            if found >= migration.version:  # another process ran it while we waited
                return found
            for statement in migration.statements:
                tx.run(dialect.spell(statement))
            tx.run(
                "INSERT INTO dispatch_schema (version, summary, applied_at) VALUES (?, ?, ?)",
                (migration.version, migration.summary, time.time()),
            )
            return migration.version

        version = transact(step)
    return version


def _lock(tx: Statements, dialect: Dialect) -> None:
    if dialect.lock:
        tx.rows(dialect.lock)
